package netbus

import (
	"context"
	"fmt"
	"net/netip"
	"time"

	"golang.org/x/crypto/chacha20poly1305"
)

// sendQueue holds frames accepted by Send and not yet packed. Frames are
// copied into one arena.
type sendQueue struct {
	recs  []qrec
	arena []byte
}

type qrec struct {
	ch     string
	off, n int
}

func (q *sendQueue) reset() {
	clear(q.recs) // drop channel string references
	q.recs = q.recs[:0]
	q.arena = q.arena[:0]
}

// Send queues frame for the group, tagged with channel, and returns at
// once; frame is copied. Messages from one Bus arrive in Send order. It
// returns ErrTooLarge beyond Config.MaxMessage, ErrChannelName for a
// channel over 255 bytes, ErrQueueFull when Config.SendQueue bytes are
// waiting (the caller decides whether to drop or retry; each refusal is
// counted in SendStats.QueueFull), and ErrClosed after Close.
func (b *Bus) Send(channel string, frame []byte) error {
	if err := b.checkSend(channel, frame); err != nil {
		return err
	}
	b.qmu.Lock()
	if b.closed.Load() {
		b.qmu.Unlock()
		return ErrClosed
	}
	if !b.enqueueLocked(channel, frame) {
		b.qmu.Unlock()
		b.sent.queueFull.Add(1)
		return ErrQueueFull
	}
	b.qmu.Unlock()
	b.signalWriter()
	return nil
}

// SendWait is Send, except that when the send queue is full it waits for
// room (woken when the writer takes the queue, not by polling) until ctx
// ends or the Bus closes. It reads ctx only once it has to wait, so a
// send that finds room costs what Send costs. A message that finds the
// queue full is counted once in SendStats.QueueFull, however long it
// waits and whether or not it is then queued. When ctx ends first it
// returns an error that matches both ErrQueueFull and ctx's error; after
// Close, ErrClosed.
func (b *Bus) SendWait(ctx context.Context, channel string, frame []byte) error {
	if err := b.checkSend(channel, frame); err != nil {
		return err
	}
	b.qmu.Lock()
	for counted := false; ; {
		if b.closed.Load() {
			b.qmu.Unlock()
			return ErrClosed
		}
		if b.enqueueLocked(channel, frame) {
			b.qmu.Unlock()
			b.signalWriter()
			return nil
		}
		if !counted {
			b.sent.queueFull.Add(1)
			counted = true
		}
		if b.room == nil {
			b.room = make(chan struct{})
		}
		room := b.room
		b.qmu.Unlock()
		select {
		case <-room:
		case <-ctx.Done():
			return fmt.Errorf("%w: %w", ErrQueueFull, context.Cause(ctx))
		}
		b.qmu.Lock()
	}
}

// checkSend refuses what no queue room would make sendable.
func (b *Bus) checkSend(channel string, frame []byte) error {
	if len(frame) > b.cfg.MaxMessage {
		return fmt.Errorf("%w: %d bytes, max %d", ErrTooLarge, len(frame), b.cfg.MaxMessage)
	}
	if len(channel) > maxChannelLen {
		return ErrChannelName
	}
	return nil
}

// enqueueLocked copies frame into the queue if it has room (an empty
// queue always has). qmu is held.
func (b *Bus) enqueueLocked(channel string, frame []byte) bool {
	q := b.q
	if len(q.arena)+len(frame) > b.cfg.SendQueue && len(q.recs) > 0 {
		return false
	}
	q.recs = append(q.recs, qrec{ch: channel, off: len(q.arena), n: len(frame)})
	q.arena = append(q.arena, frame...)
	return true
}

// wakeSendersLocked wakes the SendWait calls waiting for room (the queue
// was emptied, or the Bus closed). qmu is held.
func (b *Bus) wakeSendersLocked() {
	if b.room != nil {
		close(b.room)
		b.room = nil
	}
}

func (b *Bus) signalWriter() {
	select {
	case b.sendSig <- struct{}{}:
	default:
	}
}

// writeLoop packs queued frames into datagrams and writes them. While it
// writes, new frames queue up, so batches grow with load and latency
// stays low when idle.
func (b *Bus) writeLoop() {
	defer b.wgW.Done()
	for {
		select {
		case <-b.sendSig:
			b.flushQueue()
		case <-b.quitW:
			b.flushQueue()
			return
		}
	}
}

func (b *Bus) flushQueue() {
	var out []Packet
	for {
		b.qmu.Lock()
		q := b.q
		if len(q.recs) == 0 {
			b.qmu.Unlock()
			return
		}
		b.q, b.spare = b.spare, nil
		b.wakeSendersLocked()
		b.qmu.Unlock()

		var meta []pktMeta
		out, meta = b.pack(q, time.Now(), out[:0])
		// Write in chunks, as much as the window lets through (at least
		// one datagram, at most writeChunk); after each, announce (in
		// heartbeats) only what was handed to the transport, so a
		// heartbeat never overtakes the data it announces.
		for len(out) > 0 {
			lim := b.waitWindow(meta[0].seq)
			n := int(min(uint64(min(len(out), writeChunk)), lim-meta[0].seq+1))
			b.writeData(out[:n])
			b.smu.Lock()
			b.wseq, b.wmsg = meta[n-1].seq, meta[n-1].nextMsg
			b.smu.Unlock()
			clear(out[:n])
			out, meta = out[n:], meta[n:]
		}
		out = out[:0]
		q.reset()
		b.qmu.Lock()
		b.spare = q
		b.qmu.Unlock()
	}
}

// writeData writes a chunk of first transmissions (at most writeChunk)
// and counts them in SendStats.Datagrams and Bytes once the transport
// took them without error, not when packed: what waits for the window or
// for a blocked socket is not sent yet. Two atomic adds per chunk, where
// counting in emit cost two per datagram. A chunk whose write failed (in
// part: the transport does not say which datagrams) is counted in
// WriteErrors and not here; its datagrams are in the history, and
// receivers NAK what they miss.
func (b *Bus) writeData(ps []Packet) {
	if !b.writeBatch(ps) {
		return
	}
	bytes := 0
	for i := range ps {
		bytes += len(ps[i].Data)
	}
	b.sent.datagrams.Add(uint64(len(ps)))
	b.sent.bytes.Add(uint64(bytes))
}

// packer builds data datagrams; see pack.
type packer struct {
	b       *Bus
	kr      *keyring
	bodyMax int // plaintext body bytes per datagram
	cur     []byte
	curN    int // records in cur
	now     time.Time
	out     []Packet
	meta    []pktMeta
	nonce   [chacha20poly1305.NonceSize]byte // sealing's scratch
}

// pktMeta is what a heartbeat may announce once a datagram is written.
type pktMeta struct{ seq, nextMsg uint64 }

// pack turns q into sealed data datagrams, numbers them, records them in
// the history and appends them to out. It holds smu throughout, so a
// heartbeat never sees half of a fragmented message.
func (b *Bus) pack(q *sendQueue, now time.Time, out []Packet) ([]Packet, []pktMeta) {
	kr := b.keys.Load()
	pk := packer{b: b, kr: kr, bodyMax: b.cfg.Payload - headerLen, now: now, out: out}
	if kr != nil {
		pk.bodyMax -= tagLen
	}
	b.smu.Lock()
	defer b.smu.Unlock()
	for _, r := range q.recs {
		frame := q.arena[r.off : r.off+r.n]
		if dataBodyFixed+recordLen(r.ch, r.n) <= pk.bodyMax {
			if pk.cur != nil && len(pk.cur)-headerLen+recordLen(r.ch, r.n) > pk.bodyMax {
				pk.finishData()
			}
			if pk.cur == nil {
				pk.startData()
			}
			pk.cur = appendDataRecord(pk.cur, r.ch, frame)
			pk.curN++
			b.nextMsg++
			b.sent.messages.Add(1)
			continue
		}
		pk.finishData()
		pk.fragment(r.ch, frame)
	}
	pk.finishData()
	b.hist.trim(b.cfg.History, now.Add(-b.cfg.HistoryAge), b.ackFloor())
	return pk.out, pk.meta
}

// newDatagram returns a buffer for a datagram, header included: one the
// history let go of, or a new one. smu is held.
func (pk *packer) newDatagram() []byte {
	if d := pk.b.hist.reuse(pk.b.cfg.Payload); d != nil {
		return d[:headerLen]
	}
	return make([]byte, headerLen, pk.b.cfg.Payload)
}

func (pk *packer) startData() {
	pk.cur = pk.newDatagram()
	pk.cur = append(pk.cur, make([]byte, dataBodyFixed)...)
	putUint64(pk.cur[headerLen:], pk.b.nextMsg)
	pk.curN = 0
}

func (pk *packer) finishData() {
	if pk.cur == nil {
		return
	}
	putUint16(pk.cur[headerLen+8:], uint16(pk.curN))
	pk.emit(pk.cur, kindData, 0, 0)
	pk.cur = nil
}

// fragment splits one message into FRAG datagrams of consecutive
// sequences, of equal size but for a shorter last one: the fewest that
// hold it, each as full as the others (4 KiB makes four of 1 KiB rather
// than three of 1,332 bytes and one of 100), so that messages of one size
// make datagrams of one size, which go out in one GSO send.
func (pk *packer) fragment(ch string, frame []byte) {
	b := pk.b
	chunk := pk.bodyMax - fragBodyFixed - len(ch)
	count := (len(frame) + chunk - 1) / chunk
	chunk = (len(frame) + count - 1) / count // no more than before, and count-1 of them < len(frame)
	msg := b.nextMsg
	b.nextMsg++
	b.sent.messages.Add(1)
	b.sent.fragmented.Add(1)
	for i := range count {
		part := frame[i*chunk : min((i+1)*chunk, len(frame))]
		d := appendFragPrefix(pk.newDatagram(), msg, uint32(len(frame)), ch)
		d = append(d, part...)
		pk.emit(d, kindFrag, uint16(i), uint16(count))
	}
}

// emit numbers, seals and records one data datagram. smu is held.
func (pk *packer) emit(d []byte, kind uint8, fi, fc uint16) {
	b := pk.b
	b.seq++
	h := header{Version: datagramVersion, Kind: kind, FragIndex: fi, FragCount: fc, Node: b.id, Epoch: b.epoch, Seq: b.seq}
	if pk.kr != nil {
		h.Flags, h.KeyID = flagSealed, pk.kr.sealID
	}
	h.put(d)
	if pk.kr != nil {
		d = pk.kr.sealWith(d, &pk.nonce)
	}
	b.hist.add(b.seq, pk.now, d)
	pk.out = append(pk.out, Packet{Data: d})
	next := b.nextMsg
	if kind == kindFrag && fi+1 < fc {
		next-- // the message is not complete until its last fragment
	}
	pk.meta = append(pk.meta, pktMeta{b.seq, next})
}

// sealCtrl builds a control datagram (NAK or heartbeat) around body.
func (b *Bus) sealCtrl(kind uint8, body []byte) []byte {
	kr := b.keys.Load()
	h := header{Version: datagramVersion, Kind: kind, Node: b.id, Epoch: b.epoch, Seq: ctrlBit | b.ctrlSeq.Add(1)}
	if kr != nil {
		h.Flags, h.KeyID = flagSealed, kr.sealID
	}
	d := make([]byte, 0, headerLen+len(body)+tagLen)
	d = h.appendTo(d)
	d = append(d, body...)
	if kr != nil {
		d = kr.sealInPlace(d)
	}
	return d
}

// queueBeat queues a heartbeat to dst (zero: the group). mu is held.
func (b *Bus) queueBeat(dst netip.AddrPort, now time.Time) {
	b.smu.Lock()
	hb := beatBody{Time: uint64(max(now.UnixNano(), 1)), LastSeq: b.wseq, Oldest: min(b.hist.oldest(b.seq), b.wseq+1), NextMsg: b.wmsg, Name: b.cfg.NodeName}
	b.smu.Unlock()
	b.wout = append(b.wout, Packet{Data: b.sealCtrl(kindTimedBeat, appendBeat(nil, &hb)), Addr: dst})
	b.sent.beats.Add(1)
	if !dst.IsValid() {
		b.lastBeat = now
	}
}

// maxNakResend bounds the datagrams one NAK can make us resend, so a
// forged or confused NAK cannot turn into a flood.
const maxNakResend = 1024

// handleNak answers a NAK from the node at src: retransmit what the
// history holds (the stored sealed bytes, unchanged), and when something
// is gone, tell the requester with a unicast heartbeat (its Oldest field)
// so it stops waiting. It reports whether the NAK was for this session.
// mu is held.
func (b *Bus) handleNak(src netip.AddrPort, n *nakBody, now time.Time) bool {
	if n.Target != b.id || n.TargetEpoch != b.epoch {
		b.rejected[ReasonMisdirected]++
		return false
	}
	b.sent.naksReceived.Add(1)
	budget := maxNakResend
	var gone, asked uint64
	b.smu.Lock()
	for _, r := range n.Ranges {
		asked += r.Last - r.First + 1
	}
	b.onNakWindow(asked, now)
	oldest := b.hist.oldest(b.seq)
	for _, r := range n.Ranges {
		first, last := r.First, min(r.Last, b.wseq) // never resend what was not sent yet
		if first > last {
			continue
		}
		if first < oldest {
			gone += min(last, oldest-1) - first + 1
			first = oldest
		}
		for s := first; s <= last && budget > 0; s++ {
			if d := b.hist.get(s); d != nil {
				// A copy: once evicted, the history's buffer is reused.
				b.wout = append(b.wout, Packet{Data: append([]byte(nil), d...), Addr: src})
				budget--
				b.sent.retransmits.Add(1)
			}
		}
	}
	b.smu.Unlock()
	if gone > 0 {
		b.sent.unavailable.Add(gone)
		b.queueBeat(src, now)
	}
	return true
}

// history keeps sent data datagrams by sequence for retransmission,
// bounded in bytes and age. Sequences are consecutive, so it is a deque.
//
// The buffers of evicted datagrams are kept (up to maxSpare bytes) for the
// packer to reuse, which spares an allocation and its clearing per
// datagram. That is safe because only the writer reuses them, in pack,
// after it has written everything it packed before; retransmissions are
// copies; nothing else keeps a datagram.
type history struct {
	ents  []histEnt
	head  int    // index of the oldest entry in ents
	first uint64 // sequence of ents[head]
	bytes int
	spare [][]byte // evicted buffers, for reuse
}

// maxSpare bounds the bytes of evicted buffers kept for reuse: 2,900
// buffers of the default payload.
const maxSpare = 4 << 20

type histEnt struct {
	at time.Time
	d  []byte
}

func (h *history) init() { h.first = 1 }

func (h *history) add(seq uint64, at time.Time, d []byte) {
	if h.head == len(h.ents) {
		h.ents, h.head, h.first = h.ents[:0], 0, seq
	}
	h.ents = append(h.ents, histEnt{at, d})
	h.bytes += len(d)
}

// trim evicts entries beyond maxBytes, or older than before and below
// keep (what a receiver may still ask for is kept while it is young).
func (h *history) trim(maxBytes int, before time.Time, keep uint64) {
	for h.head < len(h.ents) && (h.bytes > maxBytes || h.ents[h.head].at.Before(before) && h.first < keep) {
		h.bytes -= len(h.ents[h.head].d)
		if d := h.ents[h.head].d; (len(h.spare)+1)*cap(d) <= maxSpare {
			h.spare = append(h.spare, d)
		}
		h.ents[h.head] = histEnt{}
		h.head++
		h.first++
	}
	if h.head > 1024 && h.head*2 > len(h.ents) {
		n := copy(h.ents, h.ents[h.head:])
		clear(h.ents[n:])
		h.ents, h.head = h.ents[:n], 0
	}
}

// reuse returns an evicted buffer of capacity size, or nil.
func (h *history) reuse(size int) []byte {
	for len(h.spare) > 0 {
		d := h.spare[len(h.spare)-1]
		h.spare[len(h.spare)-1] = nil
		h.spare = h.spare[:len(h.spare)-1]
		if cap(d) == size {
			return d
		}
	}
	return nil
}

// oldest is the oldest sequence still held, or last+1 when none is.
func (h *history) oldest(last uint64) uint64 {
	if h.head == len(h.ents) {
		return last + 1
	}
	return h.first
}

func (h *history) get(seq uint64) []byte {
	if seq < h.first || seq-h.first >= uint64(len(h.ents)-h.head) {
		return nil
	}
	return h.ents[h.head+int(seq-h.first)].d
}

func putUint64(b []byte, v uint64) {
	_ = b[7]
	b[0], b[1], b[2], b[3] = byte(v>>56), byte(v>>48), byte(v>>40), byte(v>>32)
	b[4], b[5], b[6], b[7] = byte(v>>24), byte(v>>16), byte(v>>8), byte(v)
}

func putUint16(b []byte, v uint16) { b[0], b[1] = byte(v>>8), byte(v) }
