// Package qgroup keeps the queue groups of one channel and picks, for each
// message, the one member of a group that gets it.
//
// A group is the set of memberships with the same name and pattern. A
// member joins with [Set.Join], naming the membership with a sid of its
// own (an agent may be several members of one group), and leaves with
// [Set.Leave] or [Set.LeaveAll]. [Set.Match] returns the groups whose
// pattern matches an event name, and [Group.Pick] chooses the member:
// round-robin in the order members joined, passing over members without
// room (their outbox is nearly full) and falling back to them only when
// no member with room takes the message; [Group.Offer] is the same choice
// for a caller that checks a member's room as it hands the message over.
//
// The package knows nothing of connections: a member is any comparable
// S, and the caller says through callbacks which members have room and
// whether a delivery succeeded, so the policy is table-tested on its own.
package qgroup
