package backbone

import (
	"encoding/binary"
	"testing"
)

func TestPieceSubjects(t *testing.T) {
	t.Parallel()
	s := newSubjects("netcluster", "default")
	for _, subj := range []string{
		"netcluster.default.A.ev", "netcluster.default.A.>", "netcluster.default.~YS5i.x.y",
		"netcluster.default.~fmFuc3dlcnM.0102030405060708",
	} {
		p := s.pieces(subj)
		if p == subj {
			t.Fatalf("pieces(%q) is the subject itself", subj)
		}
		back, ok := s.unpieces(p)
		if !ok || back != subj {
			t.Errorf("unpieces(pieces(%q)) = %q, %v", subj, back, ok)
		}
		if got, ok := s.unpieces(subj); ok || got != subj {
			t.Errorf("unpieces(%q) = %q, %v: not a piece subject", subj, got, ok)
		}
	}
	if got := s.pieces("netcluster.default.A.ev"); got != "netcluster.default.~p.A.ev" {
		t.Errorf("pieces = %q", got)
	}
}

func TestLaterPiece(t *testing.T) {
	t.Parallel()
	var node NodeID
	chunk := func(offset uint32) []byte {
		b := appendEnvHeader(nil, kindChunk, node, 1, 1)
		b = binary.BigEndian.AppendUint32(b, 100)
		b = binary.BigEndian.AppendUint32(b, offset)
		return append(b, 'x')
	}
	msg := append(appendEnvHeader(nil, kindMsg, node, 1, 1), make([]byte, 10)...)
	for _, tt := range []struct {
		desc string
		env  []byte
		want bool
	}{
		{"first piece", chunk(0), false},
		{"second piece", chunk(50), true},
		{"piece at 1<<24", chunk(1 << 24), true},
		{"whole message", msg, false},
		{"short", []byte{1, kindChunk}, false},
	} {
		if got := laterPiece(tt.env); got != tt.want {
			t.Errorf("%s: laterPiece = %v, want %v", tt.desc, got, tt.want)
		}
	}
}

// TestQueueName: one queue name per group channel, name and pattern, the
// same on every server; a valid NATS queue name (no white space).
func TestQueueName(t *testing.T) {
	t.Parallel()
	groups := []Group{
		{"A", "g", "job"}, {"B", "g", "job"}, {"A", "h", "job"}, {"A", "g", "job|x"},
		{"a.b", "g", "job"}, {"A", "g", "jo b"}, {"A", "g.job", ""},
	}
	seen := map[string]Group{}
	for _, g := range groups {
		q := queueName(g)
		if q != queueName(Group{g.Channel, g.Name, g.Pattern}) {
			t.Fatalf("queueName(%v) not stable", g)
		}
		for _, c := range q {
			if c == ' ' || c == '\t' || c == '\r' || c == '\n' {
				t.Fatalf("queueName(%v) = %q has white space", g, q)
			}
		}
		if o, dup := seen[q]; dup {
			t.Fatalf("groups %v and %v share queue name %q", o, g, q)
		}
		seen[q] = g
	}
	if got := queueName(Group{"A", "workers", "job"}); got[:10] != "A.workers." || len(got) != 26 {
		t.Errorf("queueName = %q", got)
	}
}
