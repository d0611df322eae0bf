package netbus

import "time"

// partial is a fragmented message being reassembled.
type partial struct {
	msg    uint64
	ch     string
	total  int
	count  uint16
	nextFi uint16
	buf    []byte
	since  time.Time
}

// onFrag handles a FRAG datagram at the stream position. Fragments of a
// message have consecutive sequences, so in order they arrive in order: a
// fragment that does not continue the partial message ends it (lost).
func (s *stream) onFrag(sl slot, now time.Time) {
	f, _ := decodeFrag(sl.body)
	m := f.Msg
	switch {
	case sl.fi == 0:
		if s.part != nil {
			s.dropPartial()
		}
		s.msgAccount(m)
		s.skipValid = false
		if int(f.Total) > s.env.cfg.MaxMessage {
			s.env.log.Warn("netbus: message too large, dropped", "node", s.from.ID, "name", s.from.Name, "size", f.Total, "max", s.env.cfg.MaxMessage)
			s.skipMessage(m)
			return
		}
		if !s.env.reserve(int(f.Total), s) {
			s.skipMessage(m)
			return
		}
		s.part = &partial{msg: m, ch: s.env.intern([]byte(f.Channel)), total: int(f.Total), count: sl.fc, buf: make([]byte, 0, f.Total), since: now}
		fallthrough
	case s.part != nil && s.part.msg == m && sl.fi == s.part.nextFi && sl.fc == s.part.count:
		s.addFragment(m, f.Chunk)
	case s.skipValid && s.skipMsg == m:
		// The rest of a message already counted lost.
	default:
		// Its first fragment was lost (or its partial dropped).
		if s.part != nil {
			s.dropPartial() // may skip m itself: then it is counted once
		}
		if !(s.skipValid && s.skipMsg == m) {
			s.msgAccount(m)
			s.skipMessage(m)
		}
	}
}

// addFragment appends the next chunk of message m to the partial message,
// and delivers it when it is whole.
func (s *stream) addFragment(m uint64, chunk []byte) {
	pt := s.part
	if len(pt.buf)+len(chunk) > pt.total {
		s.dropPartial()
		return
	}
	pt.buf = append(pt.buf, chunk...)
	pt.nextFi++
	if pt.nextFi < pt.count {
		return
	}
	s.env.partTotal -= pt.total
	s.part = nil
	if len(pt.buf) != pt.total {
		s.skipMessage(m)
		return
	}
	s.env.out = append(s.env.out, delivery{from: *s.from, ch: pt.ch, frame: pt.buf})
	s.nextMsg = m + 1
	s.st.Delivered++
}

// dropPartial gives up the message being reassembled.
func (s *stream) dropPartial() {
	pt := s.part
	s.part = nil
	s.env.partTotal -= pt.total
	s.skipMessage(pt.msg)
}

// reserve takes n bytes of the reassembly budget, dropping the oldest
// partial messages of all streams to make room; false if they do not.
func (e *streamEnv) reserve(n int, s *stream) bool {
	for (e.partTotal+n > e.cfg.MaxReassembly || !e.fits(n)) && e.all != nil {
		var old *stream
		for t := range e.all {
			if t.part != nil && (old == nil || t.part.since.Before(old.part.since)) {
				old = t
			}
		}
		if old == nil {
			break
		}
		old.dropPartial()
	}
	if e.partTotal+n > e.cfg.MaxReassembly {
		return false
	}
	if !e.room(n, s) {
		e.refused++
		return false
	}
	e.partTotal += n
	return true
}
