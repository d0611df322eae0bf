package server

import (
	"time"

	"github.com/netcluster/netcluster/internal/qgroup"
	"github.com/netcluster/netcluster/internal/router"
)

// sendState is what a connection needs only once its agent emits: made by
// its reader at the first message (sending), so that the many agents that
// only listen do not hold it (some 360 bytes each). Only the reader uses
// it.
type sendState struct {
	stallTimer *time.Timer                       // used in stall
	credit     pauseCredit                       // of pauses in vain for recipients (stall)
	fulls      []*conn                           // recipients of the message being routed whose outboxes are nearly full (routeDelivery)
	lscratch   []byte                            // legacy envelopes of the messages it sends (delivery.legacyFrame)
	origin     []byte                            // what its Msg frames carry after their flags (wire.AppendOrigin)
	memo       router.Memo[*conn]                // its channel's listeners of the event it last emitted
	qmemo      router.Memo[*qgroup.Group[*conn]] // and its channel's queue groups
	drops      dropBatch                         // its drops for full outboxes not yet counted (dropbatch.go)
	seqSeen    bool                              // a SeqMsg was routed (acks.go)
	seqScratch []byte                            // the Msg form of its SeqMsg being routed (delivery.seqBuf)
	bbRun      bbRun                             // its SeqMsgs for the backbone not yet handed over (backbone_send.go)
	in         inCounts                          // its SeqMsgs routed, not yet counted (flushIn)
}

// sending returns c's sendState, made at the first call. Only c's reader
// calls it.
func (c *conn) sending() *sendState {
	if c.snd == nil {
		// Its credit of pauses starts full, as it would have been had
		// it been made at the connection's start (it refills to
		// stallBudget, no further).
		c.snd = &sendState{credit: pauseCredit{left: stallBudget, filled: time.Now()}}
	}
	return c.snd
}

// flushDrops adds the drops c's messages met and c batched to their
// recipients' counts (dropbatch.go). Only c's reader calls it.
func (c *conn) flushDrops() {
	if c.snd != nil {
		c.snd.drops.flush()
	}
}
