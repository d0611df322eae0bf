package qgroup

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
	members := g.Members()
	n := len(members)
	if n == 0 {
		return Member[S]{}, false
	}
	start := int((g.next.Add(1) - 1) % uint64(n))
	full := 0 // members passed over for want of room
	for i := range n {
		m := members[(start+i)%n]
		if !hasRoom(m.S) {
			full++
			continue
		}
		if deliver(m) {
			return m, true
		}
	}
	if full == 0 {
		return Member[S]{}, false
	}
	for i := range n {
		m := members[(start+i)%n]
		if !hasRoom(m.S) && deliver(m) {
			return m, true
		}
	}
	return Member[S]{}, false
}
