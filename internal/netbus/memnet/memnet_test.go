package memnet

import (
	"net"
	"net/netip"
	"testing"

	"go.uber.org/goleak"

	"github.com/netcluster/netcluster/internal/netbus"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestFilterActions(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		act  func(n uint64) Action
		want string
	}{
		{"pass", func(uint64) Action { return Pass }, "01234"},
		{"drop-odd", func(n uint64) Action { return map[bool]Action{true: Drop, false: Pass}[n%2 == 1] }, "024"},
		{"dup-first", func(n uint64) Action { return map[bool]Action{true: Dup, false: Pass}[n == 0] }, "001234"},
		{"swap-pairs", func(n uint64) Action { return map[bool]Action{true: Delay, false: Pass}[n%2 == 0] }, "1032"}, // the 5th stays held: nothing follows it
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := NewHub(HubOptions{})
			a, b := h.Attach(), h.Attach()
			defer a.Close()
			defer b.Close()
			h.SetFilter(func(l Link, n uint64, _ []byte) Action {
				if l.To != b.LocalAddr() {
					return Pass
				}
				return tt.act(n)
			})
			for i := range 5 {
				if err := a.WriteBatch([]netbus.Packet{{Data: []byte{'0' + byte(i)}, Addr: b.LocalAddr()}}); err != nil {
					t.Fatal(err)
				}
			}
			got := ""
			ps := make([]netbus.Packet, 8)
			for len(got) < len(tt.want) {
				for i := range ps {
					ps[i].Data = make([]byte, 16)
				}
				n, err := b.ReadBatch(ps)
				if err != nil {
					t.Fatal(err)
				}
				for _, p := range ps[:n] {
					got += string(p.Data)
					if p.Addr != a.LocalAddr() {
						t.Errorf("source %v, want %v", p.Addr, a.LocalAddr())
					}
				}
			}
			if got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestGroupAndClose(t *testing.T) {
	t.Parallel()
	h := NewHub(HubOptions{Inbox: 2})
	a, b := h.Attach(), h.Attach()
	for range 3 {
		a.WriteBatch([]netbus.Packet{{Data: []byte("x")}}) // group: a and b
	}
	if _, _, overflow := h.Counts(); overflow != 2 {
		t.Errorf("overflow %d, want 2 (one per full inbox)", overflow)
	}
	done := make(chan error)
	go func() {
		ps := []netbus.Packet{{Data: make([]byte, 4)}}
		for {
			if _, err := b.ReadBatch(ps); err != nil {
				done <- err
				return
			}
		}
	}()
	b.Close()
	if err := <-done; err != net.ErrClosed {
		t.Errorf("ReadBatch after Close: %v", err)
	}
	if err := b.WriteBatch([]netbus.Packet{{Data: []byte("x")}}); err != net.ErrClosed {
		t.Errorf("WriteBatch after Close: %v", err)
	}
	if !h.Inject(Link{From: netip.MustParseAddrPort("1.2.3.4:5"), To: a.LocalAddr()}, []byte("y")) {
		t.Error("inject to attached conn failed")
	}
	a.Close()
}
