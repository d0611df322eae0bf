package server

import (
	"strings"
	"testing"

	"github.com/netcluster/netcluster/internal/wire"
)

// TestMsgOriginChecked: a Msg must claim the connection's channel and
// agent and no node, checked by the quick comparison (wire.ParseMsgFrom)
// and, when that fails, field by field; a message that passes it before
// does not let a bad one through after.
func TestMsgOriginChecked(t *testing.T) {
	t.Parallel()
	_, dir := ctlServer(t, `{"channels": {"A": {}}}`)
	good := wire.AppendMsg(nil, &wire.Msg{Channel: "A", Agent: "q", Event: "e", Data: []byte("d")})
	// The right origin, then an event length of 256 past the frame's end.
	cut := []byte{0, 1, 'A', 1, 'q', 0, 1, 0}
	cut = append(wire.AppendHeader(nil, wire.TypeMsg, len(cut)), cut...)
	for _, tt := range []struct {
		frame []byte
		code  uint16
		text  string
	}{
		{wire.AppendMsg(nil, &wire.Msg{Channel: "A", Agent: "other", Event: "e"}), wire.CodeOrigin, `msg origin ""/"A"/"other"`},
		{wire.AppendMsg(nil, &wire.Msg{Channel: "A", Agent: "qq", Event: "e"}), wire.CodeOrigin, "msg origin"},
		{wire.AppendMsg(nil, &wire.Msg{Channel: "B", Agent: "q", Event: "e"}), wire.CodeOrigin, "msg origin"},
		{wire.AppendMsg(nil, &wire.Msg{Channel: "A", Agent: "q", Node: "n", Event: "e"}), wire.CodeOrigin, `msg origin "n"/"A"/"q"`},
		{wire.AppendMsg(nil, &wire.Msg{Channel: "A", Agent: "q"}), wire.CodeMalformed, "msg: empty event name"},
		{cut, wire.CodeMalformed, "msg: wire: truncated frame"},
	} {
		r := qDialRaw(t, dir, "A", "q", wire.VersionCalls)
		r.write(append(append([]byte(nil), good...), tt.frame...))
		f := r.next()
		e, _ := wire.ParseError(f.Payload)
		if f.Type != wire.TypeError || e.Code != tt.code || !strings.Contains(e.Text, tt.text) {
			t.Errorf("got %s %d %q, want error %d containing %q", wire.TypeName(f.Type), e.Code, e.Text, tt.code, tt.text)
		}
	}
}
