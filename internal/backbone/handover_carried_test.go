package backbone

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/netcluster/netcluster/config"
	"github.com/netcluster/netcluster/internal/natstest"
)

// A channel durable, then not (a reload's new Backbone of server a), then
// durable again (the next reload's): the third Backbone numbers on from
// the first one's numbers, which the second carried, and server b's
// consumer gets 0..19 once each. The third one used to number from 1
// again: b dropped its messages as duplicates (10 of 10).
func TestDurableTakeSendsCarried(t *testing.T) {
	t.Parallel()
	ns := natstest.Run(t, natstest.Options{})
	dur := map[string]config.Durable{"D": *config.NewDurable()}
	a, _ := openNamed(t, ns.URL(), 1, "nodea", dur)
	b, s := openNamed(t, ns.URL(), 2, "nodeb", dur)
	waitConnected(t, a)
	waitConnected(t, b)
	b.SetInterest("D", []string{"e"}, false)
	waitFor(t, "consumer", 10*time.Second, func() bool { return len(b.Stats().Durable) == 1 })
	send := func(to *Backbone, from, until int) {
		t.Helper()
		for i := from; i < until; i++ {
			if err := to.Send("D", "e", frame("D", "x", "e", []byte(fmt.Sprint(i)))); err != nil {
				t.Fatal(err)
			}
		}
	}
	send(a, 0, 10)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.durables["D"].waitStored(ctx); err != nil {
		t.Fatal(err)
	}
	s.waitLen(t, 10, 20*time.Second)

	a2, _ := openNamed(t, ns.URL(), 1, "nodea", nil) // D not durable
	a2.TakeSends(a)
	a.Close()
	a3, _ := openNamed(t, ns.URL(), 1, "nodea", dur) // durable again
	a3.TakeSends(a2)
	a2.Close()
	waitConnected(t, a3)
	send(a3, 10, 20)
	s.waitLen(t, 20, 20*time.Second)
	time.Sleep(200 * time.Millisecond) // a duplicate would come now
	checkNumbered(t, s, 0, 20)
	if st := b.Stats(); st.Duplicates != 0 || st.Lost != 0 {
		t.Errorf("b: duplicates %d, lost %d", st.Duplicates, st.Lost)
	}
}
