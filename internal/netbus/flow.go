package netbus

import (
	"encoding/binary"
	"fmt"
	"time"
)

// Flow control. Every receiver ACKs each sender it follows, unicast, at
// most once per tick and at least once per heartbeat interval: "every
// data sequence below next is processed". The sender keeps, per group, a
// window (cwnd, in datagrams) over the slowest live receiver's ack: it
// writes a datagram only while seq < floor+cwnd, so what it has not
// written waits in the send queue, the queue fills, and Send reports
// ErrQueueFull (SendWait waits): a sender slows down instead of outrunning
// its receivers and losing. The window grows by ackStep per window of
// datagrams acked, and halves (at most once per cwndCut) when a NAK asks
// for more than an eighth of it: random loss of a few percent does not
// shrink it, a receiver drowning does.

// ackBody is an ACK's body: the receiver processed (delivered or gave up)
// every data sequence of session TargetEpoch of Target below Next.
type ackBody struct {
	Target      NodeID
	TargetEpoch uint64
	Next        uint64
}

const ackBodyLen = 8 + 8 + 8

func appendAck(b []byte, a *ackBody) []byte {
	b = append(b, a.Target[:]...)
	b = binary.BigEndian.AppendUint64(b, a.TargetEpoch)
	return binary.BigEndian.AppendUint64(b, a.Next)
}

func decodeAck(body []byte) (ackBody, error) {
	var a ackBody
	if len(body) != ackBodyLen {
		if len(body) < ackBodyLen {
			return a, fmt.Errorf("netbus: ack: %w: body %d bytes", errTruncated, len(body))
		}
		return a, fmt.Errorf("netbus: ack: %w: %d bytes", errTrailing, len(body)-ackBodyLen)
	}
	copy(a.Target[:], body)
	a.TargetEpoch = binary.BigEndian.Uint64(body[8:])
	a.Next = binary.BigEndian.Uint64(body[16:])
	if a.Next == 0 || a.Next&ctrlBit != 0 {
		return a, fmt.Errorf("netbus: ack: %w: next %d", errBadSeq, a.Next)
	}
	return a, nil
}

// Window bounds, in datagrams. The largest stays well inside a receiver's
// reorder span (replayWindowSize) and the default history.
const (
	cwndMin  = 256
	cwndInit = 2048
	cwndMax  = replayWindowSize / 2
	ackStep  = 64
	cwndCut  = 50 * time.Millisecond
)

// acker is what a sender knows of one receiver.
type acker struct {
	next  uint64    // its latest ack
	at    time.Time // when it last acked
	moved time.Time // when its ack last advanced
}

// ackTimeout is how long a receiver may go without acking, or without
// advancing while it holds the window back, before the window stops
// waiting for it (it is gone, or stuck).
func (b *Bus) ackTimeout() time.Duration { return 10 * b.cfg.HeartbeatInterval }

// handleAck records a receiver's ack; it reports whether the ack was for
// this session. mu is held.
func (b *Bus) handleAck(from NodeID, a *ackBody, now time.Time) bool {
	if a.Target != b.id || a.TargetEpoch != b.epoch {
		b.rejected[ReasonMisdirected]++
		return false
	}
	b.smu.Lock()
	k := b.ackers[from]
	if k == nil {
		if len(b.ackers) >= b.cfg.MaxPeers {
			b.smu.Unlock()
			return true
		}
		k = &acker{moved: now}
		b.ackers[from] = k
	}
	k.at = now
	if a.Next > k.next && a.Next <= b.wseq+1 {
		if k.next != 0 && b.cwnd < cwndMax {
			// Additive increase: ackStep datagrams per window acked.
			b.cwnd = min(cwndMax, b.cwnd+max(1, int(uint64(ackStep)*(a.Next-k.next)/uint64(b.cwnd))))
		}
		k.next, k.moved = a.Next, now
	}
	b.smu.Unlock()
	select {
	case b.ackSig <- struct{}{}:
	default:
	}
	return true
}

// onNakWindow halves the window when a NAK asks for more than an eighth
// of it. smu is held.
func (b *Bus) onNakWindow(asked uint64, now time.Time) {
	if asked > uint64(b.cwnd/8) && now.Sub(b.cwndCutAt) >= cwndCut {
		b.cwnd = max(cwndMin, b.cwnd/2)
		b.cwndCutAt = now
		b.sent.windowCuts.Add(1)
	}
}

// limit returns the highest sequence the window lets the writer send now,
// dropping receivers gone silent.
// smu is held.
func (b *Bus) limit(now time.Time) uint64 {
	floor := ^uint64(0)
	for id, k := range b.ackers {
		switch {
		case now.Sub(k.at) > b.ackTimeout() || now.Sub(k.moved) > 10*b.ackTimeout():
			delete(b.ackers, id)
		case k.next <= b.wseq && now.Sub(k.moved) > b.ackTimeout():
			// Behind and not advancing: do not wait for it.
		default:
			floor = min(floor, k.next)
		}
	}
	if floor == ^uint64(0) {
		// No receiver acks (none yet, or none at all): one window per
		// heartbeat interval, so a first burst does not drown a receiver
		// that has not acked yet, and a lone node still sends.
		if now.Sub(b.freeAt) >= b.cfg.HeartbeatInterval {
			b.freeFloor, b.freeAt = b.wseq+1, now
		}
		floor = b.freeFloor
	}
	return floor + uint64(b.cwnd) - 1
}

// waitWindow blocks the writer until seq may be sent, and returns the
// highest sequence the window lets through; once the Bus closes, the
// window no longer holds anything back (^0).
func (b *Bus) waitWindow(seq uint64) uint64 {
	var t *time.Timer
	for {
		b.smu.Lock()
		lim := b.limit(time.Now())
		b.smu.Unlock()
		if seq <= lim {
			if t != nil {
				t.Stop()
			}
			return lim
		}
		b.sent.windowFull.Add(1)
		if t == nil {
			t = time.NewTimer(b.cfg.HeartbeatInterval)
		} else {
			t.Reset(b.cfg.HeartbeatInterval)
		}
		select {
		case <-b.ackSig:
		case <-t.C:
		case <-b.quitW:
			t.Stop()
			return ^uint64(0)
		}
	}
}

// ackEvery is how far a stream moves before it is acked at once, without
// waiting for the tick.
const ackEvery = cwndMin / 2

// queueAck acks p if its stream moved since the last ack, or its last
// ack is a heartbeat interval old. mu is held.
func (b *Bus) queueAck(p *peer, now time.Time) {
	s := p.s
	if s == nil || !s.started {
		return
	}
	if s.next == p.ackNext && now.Sub(p.ackAt) < b.cfg.HeartbeatInterval {
		return
	}
	p.ackNext, p.ackAt = s.next, now
	a := ackBody{Target: p.pub.ID, TargetEpoch: p.epoch, Next: s.next}
	b.wout = append(b.wout, Packet{Data: b.sealCtrl(kindAck, appendAck(nil, &a)), Addr: p.pub.Addr})
}

// ackFloor is the lowest sequence a live receiver has not acked (^0
// when none is known). smu is held.
func (b *Bus) ackFloor() uint64 {
	floor := ^uint64(0)
	for _, k := range b.ackers {
		floor = min(floor, k.next)
	}
	return floor
}
