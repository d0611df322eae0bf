package backbone

import (
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
)

// Probes: whether any other server subscribes to a request's subject. A
// probe is an empty NATS message with a reply subject, published on the
// subject the request goes to. A server whose plain subscription gets it
// answers with an empty message; when no subscription matches, the NATS
// server itself answers with a no-responders status (503), which Probe
// turns into a call of none. The connection is NoEcho: this server's own
// subscriptions never count.

// probeWait bounds how long a probe waits for either answer, from its
// publication or, for one made while NATS was unreachable, from the
// reconnection.
const probeWait = 5 * time.Second

// prober tracks the probes in flight.
type prober struct {
	b      *Backbone
	mu     sync.Mutex
	inbox  string // "INBOX." prefix of this connection's probes
	sub    *nats.Subscription
	next   uint64
	wait   time.Duration // probeWait; shorter in tests
	flight map[uint64]func()
	// held are the probes published while the connection was down:
	// nats.go holds them (as it holds the Calls they follow, up to
	// outbuffer) and sends them once reconnected, when their wait starts.
	held []uint64
}

func (p *prober) init(b *Backbone) {
	p.b = b
	p.wait = probeWait
	p.flight = make(map[uint64]func())
}

// start subscribes to the probes' answers.
func (p *prober) start() error {
	p.inbox = p.b.nc.NewRespInbox()
	p.inbox = p.inbox[:strings.LastIndexByte(p.inbox, '.')+1]
	sub, err := p.b.nc.Subscribe(p.inbox+"*", p.answer)
	p.sub = sub
	return err
}

// Probe asks whether any other server subscribes to the subject of event
// on channel; if NATS says none does, none is called (once, from another
// goroutine). If an answer comes, or none within probeWait, or the probe
// cannot be published (NATS unreachable and nothing held for it: outbuffer
// 0 or full), none is never called.
//
// While NATS is unreachable the probe is published all the same: nats.go
// holds it with the Call, which it holds too, and sends both on
// reconnecting. (Probe used to return when not connected, so a request
// made during a reconnection went out with the Call once NATS was back
// and waited for its context even when no server subscribed.)
func (b *Backbone) Probe(channel, event string, none func()) {
	p := &b.pr
	if b.closed.Load() || p.sub == nil {
		return
	}
	p.mu.Lock()
	p.next++
	id := p.next
	p.flight[id] = none
	p.mu.Unlock()
	m := &nats.Msg{Subject: b.subj.event(channel, event), Reply: p.inbox + strconv.FormatUint(id, 10)}
	if err := b.nc.PublishMsg(m); err != nil {
		p.take(id)
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	// nats.go marks the connection up before it runs the reconnect
	// handler (reconnected, under mu): a probe seen held here is armed
	// there.
	if !b.nc.IsConnected() {
		p.held = append(p.held, id)
		return
	}
	p.arm(id)
}

// arm starts probe id's wait. p.mu is held.
func (p *prober) arm(id uint64) {
	time.AfterFunc(p.wait, func() { p.take(id) })
}

// reconnected starts the wait of the probes held while NATS was
// unreachable: nats.go sends them now.
func (p *prober) reconnected() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, id := range p.held {
		p.arm(id)
	}
	p.held = nil
}

// take removes probe id and returns its callback, nil if it is gone.
func (p *prober) take(id uint64) func() {
	p.mu.Lock()
	defer p.mu.Unlock()
	f := p.flight[id]
	delete(p.flight, id)
	return f
}

// answer handles an answer to a probe: a no-responders status calls its
// callback; any other answer only ends it.
func (p *prober) answer(m *nats.Msg) {
	id, err := strconv.ParseUint(m.Subject[len(p.inbox):], 10, 64)
	if err != nil {
		return
	}
	f := p.take(id)
	if f != nil && len(m.Data) == 0 && m.Header.Get("Status") == "503" {
		f()
	}
}

// isProbe reports whether m is another server's probe, and answers it:
// this server subscribes to its subject.
func (b *Backbone) isProbe(m *nats.Msg) bool {
	if len(m.Data) != 0 || m.Reply == "" {
		return false
	}
	b.nc.Publish(m.Reply, nil)
	return true
}
