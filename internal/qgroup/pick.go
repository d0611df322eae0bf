package qgroup

// Outcome is what a member did with a message offered to it (Group.Offer).
type Outcome int

const (
	// Took: the member took the message.
	Took Outcome = iota
	// Full: the member has no room; it is passed over, and offered the
	// message again only if no member with room takes it.
	Full
	// Refused: the member cannot take it (it is going away); the next
	// one is tried.
	Refused
)

// Pick chooses the member that gets one message and hands it over with
// deliver, which reports whether that member took it (false: the member
// is going away; the next one is tried).
//
// The member whose turn it is comes first, then the others in the order
// they joined, wrapping around: members for which hasRoom is false are
// passed over. If no member with room takes the message, the members
// without room are tried in the same order (deliver then applies whatever
// the caller does for a full member). The turn advances by one for every
// Pick, so equal members get equal shares.
//
// Pick returns the member that took the message, and false if none did
// (the group has no member, or all refused).
func (g *Group[S]) Pick(hasRoom func(S) bool, deliver func(Member[S]) bool) (Member[S], bool) {
	return g.Offer(func(m Member[S], force bool) Outcome {
		if hasRoom(m.S) == force { // without room first time, with room the second
			if force {
				return Refused
			}
			return Full
		}
		if deliver(m) {
			return Took
		}
		return Refused
	})
}

// Offer is Pick for a caller that checks a member's room as it hands the
// message over (under one lock, say): offer gives m the message, which m
// may answer Full unless force is set. Members are offered the message in
// Pick's order; if none took it and some were Full, all are offered it
// again, in the same order, with force set (a member going away refuses
// it again).
func (g *Group[S]) Offer(offer func(m Member[S], force bool) Outcome) (Member[S], bool) {
	members := g.Members()
	n := len(members)
	if n == 0 {
		return Member[S]{}, false
	}
	start := int((g.next.Add(1) - 1) % uint64(n))
	full := 0 // members passed over for want of room
	for i := range n {
		m := members[(start+i)%n]
		switch offer(m, false) {
		case Took:
			return m, true
		case Full:
			full++
		}
	}
	if full == 0 {
		return Member[S]{}, false
	}
	for i := range n {
		m := members[(start+i)%n]
		if offer(m, true) == Took {
			return m, true
		}
	}
	return Member[S]{}, false
}
