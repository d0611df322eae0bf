package netbus

import "time"

const lossLogInterval = time.Second

// lose accounts n given-up datagrams from sequence first on.
func (s *stream) lose(first, n uint64) {
	s.st.LostDatagrams += n
	if !s.lossDirty {
		s.lossFirst = first
	}
	s.lossLast = first + n - 1
	s.burstOpen, s.lossDirty = true, true
	if s.part != nil { // fragments are consecutive: the lost one was its next
		s.dropPartial()
	}
}

// msgAccount counts messages skipped before message number m.
func (s *stream) msgAccount(m uint64) {
	if !s.msgKnown {
		s.msgKnown, s.nextMsg = true, m
		return
	}
	if m > s.nextMsg {
		s.st.LostMessages += m - s.nextMsg
		s.lossDirty = true
		s.nextMsg = m
	}
}

// tailAccount counts messages lost at the end of what a heartbeat
// announced, once every sequence it covers has been processed.
func (s *stream) tailAccount() {
	if s.beatValid && s.started && s.part == nil && s.next > s.beatLast && s.beatNextMsg > s.nextMsg {
		s.msgAccount(s.beatNextMsg)
	}
}

// skipMessage counts message m lost and ignores its remaining fragments.
func (s *stream) skipMessage(m uint64) {
	s.st.LostMessages++
	s.lossDirty = true
	s.nextMsg = m + 1
	s.skipMsg, s.skipValid = m, true
}

// reportLoss logs losses since the last report: at the end of a burst,
// at most once per lossLogInterval (the tick reports what was held back).
func (s *stream) reportLoss(now time.Time, force bool) {
	if !s.lossDirty || (!force && now.Sub(s.lastLog) < lossLogInterval) {
		return
	}
	d, m := s.st.LostDatagrams-s.loggedDgrams, s.st.LostMessages-s.loggedMs
	s.loggedDgrams, s.loggedMs = s.st.LostDatagrams, s.st.LostMessages
	s.lossDirty, s.lastLog = false, now
	if d == 0 && m == 0 {
		return
	}
	p := s.from
	s.env.log.Warn("netbus: unrecoverable loss", "node", p.ID, "name", p.Name, "addr", p.Addr,
		"datagrams", d, "messages", m, "seq_first", s.lossFirst, "seq_last", s.lossLast, "total_datagrams", s.st.LostDatagrams, "total_messages", s.st.LostMessages)
}
