package backbone

import (
	"context"
	"testing"
	"time"
)

// A channel durable, then not (a reload's new Backbone of server a), then
// durable again (the next reload's): the third Backbone numbers on from
// the first one's numbers, which the second carried, and server b's
// consumer gets 0..19 once each. The third one used to number from 1
// again: b dropped its messages as duplicates (10 of 10).
func TestDurableTakeSendsCarried(t *testing.T) {
	t.Parallel()
	ns, dur, a, b, s := handoverPair(t)
	sendNumbered(t, a, 0, 10)
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
	sendNumbered(t, a3, 10, 20)
	s.waitLen(t, 20, 20*time.Second)
	time.Sleep(200 * time.Millisecond) // a duplicate would come now
	checkNumbered(t, s, 0, 20)
	if st := b.Stats(); st.Duplicates != 0 || st.Lost != 0 {
		t.Errorf("b: duplicates %d, lost %d", st.Duplicates, st.Lost)
	}
}
