package server

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/netcluster/netcluster/internal/qgroup"
	"github.com/netcluster/netcluster/internal/transport"
	"github.com/netcluster/netcluster/internal/wire"
)

const (
	readBufSize = 32 << 10 // per connection
	maxPatterns = 10000    // listener patterns per agent
)

// conn is one agent's connection. Two goroutines serve it while the agent
// is busy: run reads (conn_handshake.go, then conn_read.go; a reader idle
// for parkAfter parks the connection and ends, and resume reads on in
// another goroutine, conn_park_linux.go) and writeLoop writes the outbox
// while there is something to write (conn_write.go); any goroutine
// routing a message queues it in the outbox (conn_outbox.go). Its lifetime: handshake, join, read until the agent
// or the server ends it, leave, linger while the writer flushes, close,
// and give what it had queued for its queue groups to other members
// (requeue, queues.go).
type conn struct {
	ch    *channel
	srv   *Server
	nc    net.Conn
	since time.Time
	pid   int // from SO_PEERCRED, or the agent's hello; -1 if unknown
	uid   int // from SO_PEERCRED; -1 if unknown

	// Set by the handshake, then read-only; legacy and version under omu
	// (deliver reads them while the connection is still undecided).
	id       string
	legacy   bool
	version  byte // the protocol version of the connection (Welcome's)
	tryRead  bool // the reader's (below); here, in the word legacy and version leave free
	hellopid int
	rd       *wire.Reader // native connections; nil while br is (conn_input.go)

	// Owned by the reader (run's goroutine).
	patterns int // listener patterns added (native agents)
	br       *bufio.Reader
	big      int        // size of the frame larger than br arriving, 0 if none (conn_frames.go)
	bigLeft  int        // of its bytes, those not yet read
	charged  int        // bytes charged to the server's partial frame budget
	snd      *sendState // what routing its messages needs, from its first one on (sending)

	// The reader's too: br is lent from in, nil while the reader waits
	// with nothing buffered (conn_input.go); tryRead has frameReader read
	// without waiting; maxFrame is the frame limit rd has from the
	// handshake on.
	in       *input
	iw       inputWait
	maxFrame int

	// The outbox: frames queued for the agent, written by writeLoop.
	omu  sync.Mutex
	obuf []byte
	obig int // size of a frame larger than the bound alone at the head of conv or obuf
	// conv holds the Msg frames queued while the connection was undecided
	// that are still to be turned into legacy envelopes (toLegacy); they
	// come before obuf. The writer converts them a batch at a time as the
	// agent reads, so one that reads nothing costs no conversion.
	conv     []byte
	convGone int           // bytes of conv's array before conv, converted already (convert)
	inflight int           // bytes of the batch the writer is writing not yet written (less obig's frame), counted in the bound
	batchLen int           // size of that batch
	batchBig int           // of it, the size of a frame larger than the bound at its head (not counted)
	room     chan struct{} // closed when the writer takes obuf; senders stall on it
	wrote    uint64        // bytes its writer has written in all
	// slow holds what only an agent that fell behind needs (slowLocked),
	// under omu: an idle agent's conn is smaller by it (S8).
	slow     *slowState
	stalls   time.Duration // stall time that ran out since the writer last took obuf
	bbCredit pauseCredit   // of the backbone's pauses for it, progress or not (waitRoom)
	waits    time.Duration // stall time that ran out while the writer, not writing, had yet to make progress
	unproven uint64        // while not 0, what wrote must pass before its writer's progress shows the agent reads (toLegacy)
	writing  bool          // the writer is in a write (from Take to Wrote)
	closing  bool          // no more deliveries; writeLoop flushes then closes
	stalled  bool          // stalls used up stallBudget; none until the writer takes obuf
	// undecided: the wire is not known yet; messages are queued as Msg
	// frames, for a legacy agent (toLegacy). discarding: a native
	// agent in its handshake, which gets nothing before its Welcome.
	undecided, discarding bool
	// msgsOut and bytesOut count what was queued for the agent: plain
	// fields under omu, among those a sender reads under it anyway
	// (queuedLocked). As atomics they shared a cache line with progress
	// and full, which the agent's writer writes on the other core.
	msgsOut, bytesOut uint64
	// progress counts the writer's steps forward: batches taken and
	// chunks of them written (written under omu, read without it too).
	// Here, not beside full and dropped: a sender reads those for each
	// message, and the writer adding to progress at each take made that
	// read a miss.
	progress atomic.Uint64
	told     uint64      // drops (dropped) reported to the agent, or forgotten; the rest are yet to be (appendDroppedLocked)
	dropWarn dropWarning // rate-limits the log's drop warnings (dropwarn.go)

	qkeys map[uint32]qgroup.Key // the groups of its memberships, once it left them (for requeue)

	// Acknowledgements (acks.go, acks_round.go). takes counts the batches
	// the writer took (under omu), batches those it finished writing,
	// convLast is the take that emptied conv (under omu); routed is the
	// last SeqMsg number routed, acked the last acknowledged (the
	// acker's); sendState's seqSeen and seqScratch belong to the reader. joined
	// (written under omu) is set while c is a member of its channel; ackIn
	// and ackAt place it in its channel's ackSet (acks_set.go); ackSender
	// is set while it is registered with the acker (kick).
	takes     uint64
	convLast  uint64
	batches   atomic.Uint64
	routed    atomic.Uint64
	acked     uint64
	ackStuck  atomic.Uint64 // the acker's: 1 + progress when it gave up waiting for this writer, 0 if it did not
	joined    atomic.Bool
	ackIn     atomic.Int32
	ackAt     int // under c.ch.acks.mu
	ackSender atomic.Bool
	parkFD    int32    // its socket while parked (conn_park_linux.go), under srv.parked.mu
	gap       gapState // its stream and Watch (streams.go)

	dw direct // in-place writes (conn_direct.go), under omu
	// bbGen is odd while the reader holds messages it routed for the
	// backbone and has not handed over (backbone_send.go); only the reader
	// writes it, a replay reads it (replay.go).
	bbGen atomic.Uint64

	done      chan struct{} // closed by close
	closeOnce sync.Once
	// wc holds the writers' wake and writerDone, made when first needed
	// (writer): an idle agent, whose Welcome and Pongs are written in
	// place, never has a writer, and its two channels were a quarter of
	// what its conn cost the server (S8).
	wc atomic.Pointer[writerChans]
	// writerOn: writers may run (startOutput); writerUp: one does.
	writerOn, writerUp atomic.Bool

	msgsIn  atomic.Uint64
	dropped atomic.Uint64
	// full, once a message did not fit in the outbox and until the writer
	// next takes it, holds the room that was left then (and whether the
	// agent is legacy; fullRoom): a message that does not fit in it is
	// dropped without taking omu (deliver), so that agents that read
	// nothing cost their senders little. 0 if not full.
	full     atomic.Int64
	queuedIn atomic.Uint64 // QueueMsg frames put in its outbox
	// refunds is credit given back to this connection as a sender by
	// recipients that made progress after pauses in vain (stall).
	refunds atomic.Int64
}

func newConn(ch *channel, nc net.Conn) *conn {
	c := &conn{
		ch:    ch,
		srv:   ch.srv,
		nc:    nc,
		since: time.Now(),
		pid:   -1,
		uid:   -1,
		done:  make(chan struct{}),
	}
	if pid, uid, ok := transport.PeerCred(nc); ok {
		c.pid, c.uid = pid, uid
	}
	c.initDirect()
	return c
}

// run serves the connection until it ends, or until its reader parks it
// (conn_park_linux.go): then it reports true, and the reader goes on in
// another goroutine once the agent sends again (resume), and ends the
// connection there.
func (c *conn) run() (parked bool) {
	c.maxFrame = c.srv.limits.Load().maxFrame
	c.takeInput()
	err := c.handshake(c.br)
	if err != nil {
		c.giveInput()
		c.ch.index.RemoveAll(c)
		c.ackForget()
		c.close()
		c.logEnd(err)
		return false
	}
	c.startOutput()
	return c.serveFrames()
}

// serveFrames reads and acts on the agent's frames until the connection
// ends, then ends it; or reports true once its reader parked it.
func (c *conn) serveFrames() (parked bool) {
	var err error
	if c.legacy {
		err = c.readLegacy()
	} else {
		err = c.readNative()
	}
	if errors.Is(err, errParked) {
		return true
	}
	c.giveInput()
	c.flushDrops()
	c.endStream()
	c.ch.leave(c)
	c.ackForget()
	c.linger()
	c.requeue()
	c.logEnd(err)
	return false
}

// logEnd logs why the connection ended.
func (c *conn) logEnd(err error) {
	if err != nil && !isClosedErr(err) {
		c.srv.log.Info("agent disconnected", "channel", c.ch.name, "agent", c.id, "err", err)
	} else if c.id != "" {
		c.srv.log.Debug("agent disconnected", "channel", c.ch.name, "agent", c.id)
	}
}

// protoError is a problem with what the agent sent: it is reported to the
// agent in an Error frame before the connection closes.
type protoError struct {
	code uint16
	text string
}

func (e *protoError) Error() string { return e.text }

func perr(code uint16, format string, args ...any) error {
	return &protoError{code: code, text: fmt.Sprintf(format, args...)}
}

var errShutdown = &protoError{code: wire.CodeShutdown, text: "server shutting down"}

func isClosedErr(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed)
}
