package server

import (
	"bufio"
	"strings"
	"testing"
)

// A sender's drops for r, batched while it read a burst, are told to r
// before the sender's next message to r, also when that message is the last
// of the sender's read buffer (idleReader: not batched, so the slots held
// must be added first). Before, r got the message and only then the
// Dropped frame of the earlier drops.
func TestDropToldBeforeSendersNextMessage(t *testing.T) {
	_, ch, frame, v := stallServer(t)
	r := newConn(ch, sink{})
	r.id = "r"
	if _, ok := ch.join(r); !ok {
		t.Fatal("join")
	}
	if err := ch.index.Add(r, "ev"); err != nil {
		t.Fatal(err)
	}
	src := newConn(ch, sink{})
	src.id = "src"
	busy := bufio.NewReader(strings.NewReader("more frames"))
	busy.Peek(1)
	src.br = busy // not idle: drops are batched
	for i := 0; ch.stats.dropped.Load() < 5; i++ {
		if i > 1000 {
			t.Fatal("no drops")
		}
		ch.route(src, frame, &v)
	}
	direct := r.dropped.Load()
	t.Logf("channel dropped %d, r.dropped %d (rest batched in src's slots)", ch.stats.dropped.Load(), direct)
	// R's writer takes its outbox and writes it (room again).
	q := outboxQueue{r}
	b, _ := q.Take(nil)
	q.Wrote(b, len(b), nil)
	// The sender's last message of its read buffer.
	src.br = bufio.NewReader(strings.NewReader(""))
	ch.route(src, frame, &v)
	if r.told != ch.stats.dropped.Load() {
		t.Errorf("before the sender's next message r was told of %d drops in all; %d were made before it (the rest come after the message)", r.told, ch.stats.dropped.Load())
	}
}
