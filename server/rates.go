package server

import (
	"sync"
	"time"

	"github.com/netcluster/netcluster/control"
)

// rateInterval is how often a running server samples its counters to
// compute the rates Stats reports.
const rateInterval = time.Second

// rater samples a server's counters every rateInterval and keeps the
// rates between the last two samples. Stats and Channel read them.
type rater struct {
	every time.Duration // rateInterval; tests change it before Start

	mu    sync.Mutex
	prev  *rateSample
	view  rateView
	stopc chan struct{}
	wg    sync.WaitGroup
}

// rateSample is one reading of the counters.
type rateSample struct {
	at       time.Time
	channels map[*channel]ChannelCounters // by channel: one removed and re-added starts again
	net      *NetStats
}

// rateView holds the rates between the last two samples.
type rateView struct {
	channels map[*channel]control.Rates
	total    *control.Rates
	net      *control.NetRates
	peers    map[string]control.PeerRates // by node id
}

// start takes the first sample, the baseline, and then samples every
// r.every until stop. s.mu is held, and start runs before the server
// accepts agents, so the baseline reads the counters before any message
// and the first rate covers the server's first interval: a sample taken
// later, by the goroutine, missed what agents sent before it.
func (r *rater) start(s *Server) {
	every := r.every
	if every <= 0 {
		every = rateInterval
	}
	base := r.read(s, s.sortedChannelsLocked(), time.Now())
	r.mu.Lock()
	r.prev = base
	r.mu.Unlock()
	r.stopc = make(chan struct{})
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-r.stopc:
				return
			case now := <-t.C:
				r.sample(s, now)
			}
		}
	}()
}

func (r *rater) stop() {
	if r.stopc != nil {
		close(r.stopc)
		r.wg.Wait()
		r.stopc = nil
	}
}

// sample reads the counters at now and computes the rates since the
// previous sample.
func (r *rater) sample(s *Server, now time.Time) {
	s.mu.Lock()
	chans := s.sortedChannelsLocked()
	s.mu.Unlock()
	cur := r.read(s, chans, now)
	r.mu.Lock()
	defer r.mu.Unlock()
	prev := r.prev
	r.prev = cur
	if prev == nil {
		return
	}
	dt := now.Sub(prev.at).Seconds()
	if dt <= 0 {
		return
	}
	per := func(a, b uint64) float64 {
		if b < a {
			return 0 // not expected of counters; never negative
		}
		return float64(b-a) / dt
	}
	v := rateView{channels: make(map[*channel]control.Rates, len(cur.channels)), total: &control.Rates{}}
	for ch, c := range cur.channels {
		p, ok := prev.channels[ch]
		if !ok {
			continue
		}
		cr := control.Rates{
			MsgsIn: per(p.MsgsIn, c.MsgsIn), BytesIn: per(p.BytesIn, c.BytesIn),
			MsgsOut: per(p.MsgsOut, c.MsgsOut), BytesOut: per(p.BytesOut, c.BytesOut),
			Dropped: per(p.Dropped, c.Dropped), Slow: per(p.Slow, c.Slow),
		}
		v.channels[ch] = cr
		v.total.MsgsIn += cr.MsgsIn
		v.total.BytesIn += cr.BytesIn
		v.total.MsgsOut += cr.MsgsOut
		v.total.BytesOut += cr.BytesOut
		v.total.Dropped += cr.Dropped
		v.total.Slow += cr.Slow
	}
	if n, p := cur.net, prev.net; n != nil && p != nil {
		v.net = &control.NetRates{
			Sent: per(p.Sent, n.Sent), SendDropped: per(p.SendDropped, n.SendDropped),
			Received: per(p.Received, n.Received), Rejected: per(sum(p.Rejected), sum(n.Rejected)),
			Retransmits: per(p.Retransmits, n.Retransmits),
		}
		before := make(map[string]NetPeerStats, len(p.Peers))
		for _, pp := range p.Peers {
			before[pp.Node] = pp
		}
		v.peers = make(map[string]control.PeerRates, len(n.Peers))
		for _, np := range n.Peers {
			if pp, ok := before[np.Node]; ok {
				v.peers[np.Node] = control.PeerRates{
					Delivered: per(pp.Delivered, np.Delivered), Datagrams: per(pp.Datagrams, np.Datagrams),
					Recovered: per(pp.Recovered, np.Recovered), LostMessages: per(pp.LostMessages, np.LostMessages),
				}
			}
		}
	}
	r.view = v
}

// read reads the counters of chans and of the network side at now.
func (r *rater) read(s *Server, chans []*channel, now time.Time) *rateSample {
	cur := &rateSample{at: now, channels: make(map[*channel]ChannelCounters, len(chans)), net: s.netStats()}
	for _, ch := range chans {
		cur.channels[ch] = ch.counters()
	}
	return cur
}

func sum(m map[string]uint64) uint64 {
	var t uint64
	for _, v := range m {
		t += v
	}
	return t
}

// channelRates returns ch's rates, nil before two samples of it.
func (r *rater) channelRates(ch *channel) *control.Rates {
	r.mu.Lock()
	defer r.mu.Unlock()
	if cr, ok := r.view.channels[ch]; ok {
		return &cr
	}
	return nil
}

// fill sets the rates of st's totals and network side.
func (r *rater) fill(st *Stats) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.view.total != nil {
		t := *r.view.total
		st.Totals.Rates = &t
	}
	if st.Network == nil || r.view.net == nil {
		return
	}
	nr := *r.view.net
	st.Network.Rates = &nr
	for i := range st.Network.Peers {
		if pr, ok := r.view.peers[st.Network.Peers[i].Node]; ok {
			st.Network.Peers[i].Rates = &pr
		}
	}
}
