package netbus

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"unicode/utf8"
)

// Datagram layout constants. See docs/PROTOCOL.md, section 10, for the layout.
const (
	magic0, magic1  = 'N', 'C' // first two bytes of every datagram
	datagramVersion = 1        // the only version this package speaks

	headerLen = 34 // fixed header size in bytes
	tagLen    = 16 // Poly1305 tag appended to sealed bodies

	// ctrlBit is set in the sequence number of control datagrams (NAK,
	// HEARTBEAT). Control and data datagrams of one session therefore never
	// share a sequence number, which keeps AEAD nonces unique (see crypto.go).
	ctrlBit = uint64(1) << 63

	maxChannelLen = 255 // channel names travel with a one-byte length
	maxNameLen    = 255 // node names travel with a one-byte length
)

// Datagram kinds. ONLY APPEND TO THIS LIST: the numbers are on the wire.
const (
	kindData      uint8 = 1 // a batch of whole messages
	kindFrag      uint8 = 2 // one fragment of a message too big for one datagram
	kindNak       uint8 = 3 // a receiver asks a sender to retransmit sequences
	kindHeartbeat uint8 = 4 // a sender's latest sequence, retention and name
	kindTimedBeat uint8 = 5 // a heartbeat that carries the sender's clock
	kindAck       uint8 = 6 // a receiver tells a sender how far it has processed
	kindLimit     uint8 = 7 // first unassigned kind; keep it last
)

// Header flags. ONLY APPEND TO THIS LIST. Unknown flags are rejected.
const (
	flagSealed uint8 = 1 << 0 // body is AEAD-sealed with the key in KeyID
	flagsKnown       = flagSealed
)

// Decoding errors. Every malformed datagram yields one of these, wrapped
// with detail; classify with errors.Is.
var (
	errTruncated   = errors.New("truncated")
	errBadMagic    = errors.New("bad magic")
	errBadVersion  = errors.New("unsupported version")
	errBadKind     = errors.New("unknown kind")
	errBadFlags    = errors.New("unknown flags")
	errBadKeyID    = errors.New("key id on a plaintext datagram")
	errBadFragment = errors.New("bad fragment index/count")
	errBadSeq      = errors.New("bad sequence number")
	errBadCount    = errors.New("bad count")
	errBadLength   = errors.New("bad length")
	errBadName     = errors.New("bad node name")
	errTrailing    = errors.New("trailing bytes")
)

// NodeID identifies one process of a node: random per process start.
type NodeID [8]byte

// String returns the id as 16 hex digits.
func (id NodeID) String() string { return hex.EncodeToString(id[:]) }

// header is the fixed part of every datagram. Its encoded bytes are the
// associated data of the AEAD, so every field is authenticated.
type header struct {
	Version   uint8
	Kind      uint8
	Flags     uint8
	KeyID     uint8
	FragIndex uint16 // FRAG only: index of this fragment, < FragCount
	FragCount uint16 // FRAG only: number of fragments, >= 2
	Node      NodeID
	Epoch     uint64 // sender's session: start time in ns
	Seq       uint64 // data stream: 1, 2, ...; control stream: ctrlBit|1, ctrlBit|2, ...
}

func (h *header) appendTo(b []byte) []byte {
	b = append(b, magic0, magic1, h.Version, h.Kind, h.Flags, h.KeyID)
	b = binary.BigEndian.AppendUint16(b, h.FragIndex)
	b = binary.BigEndian.AppendUint16(b, h.FragCount)
	b = append(b, h.Node[:]...)
	b = binary.BigEndian.AppendUint64(b, h.Epoch)
	return binary.BigEndian.AppendUint64(b, h.Seq)
}

// putHeader writes h into b[:headerLen].
func (h *header) put(b []byte) { h.appendTo(b[:0]) }

func isDataKind(k uint8) bool { return k == kindData || k == kindFrag }

// decodeHeader parses and validates the fixed header at the start of b.
func decodeHeader(b []byte) (header, error) {
	var h header
	if len(b) < headerLen {
		return h, fmt.Errorf("netbus: header: %w: %d bytes, need %d", errTruncated, len(b), headerLen)
	}
	if b[0] != magic0 || b[1] != magic1 {
		return h, fmt.Errorf("netbus: header: %w: %#02x%02x", errBadMagic, b[0], b[1])
	}
	h.Version, h.Kind, h.Flags, h.KeyID = b[2], b[3], b[4], b[5]
	h.FragIndex = binary.BigEndian.Uint16(b[6:])
	h.FragCount = binary.BigEndian.Uint16(b[8:])
	copy(h.Node[:], b[10:18])
	h.Epoch = binary.BigEndian.Uint64(b[18:])
	h.Seq = binary.BigEndian.Uint64(b[26:])
	switch {
	case h.Version != datagramVersion:
		return h, fmt.Errorf("netbus: header: %w %d (want %d)", errBadVersion, h.Version, datagramVersion)
	case h.Kind == 0 || h.Kind >= kindLimit:
		return h, fmt.Errorf("netbus: header: %w %d", errBadKind, h.Kind)
	case h.Flags&^flagsKnown != 0:
		return h, fmt.Errorf("netbus: header: %w %#02x", errBadFlags, h.Flags)
	case h.Flags&flagSealed == 0 && h.KeyID != 0:
		return h, fmt.Errorf("netbus: header: %w (%d)", errBadKeyID, h.KeyID)
	}
	if h.Kind == kindFrag {
		if h.FragCount < 2 || h.FragIndex >= h.FragCount {
			return h, fmt.Errorf("netbus: header: %w: %d of %d", errBadFragment, h.FragIndex, h.FragCount)
		}
	} else if h.FragIndex != 0 || h.FragCount != 0 {
		return h, fmt.Errorf("netbus: header: %w: %d of %d on kind %d", errBadFragment, h.FragIndex, h.FragCount, h.Kind)
	}
	if isDataKind(h.Kind) {
		if h.Seq == 0 || h.Seq&ctrlBit != 0 {
			return h, fmt.Errorf("netbus: header: %w %#x for data", errBadSeq, h.Seq)
		}
	} else if h.Seq&ctrlBit == 0 || h.Seq == ctrlBit {
		return h, fmt.Errorf("netbus: header: %w %#x for control", errBadSeq, h.Seq)
	}
	return h, nil
}

// record is one message in a DATA batch.
type record struct {
	Channel string
	Frame   []byte
}

// recordLen is the encoded size of a record in a DATA body.
func recordLen(channel string, frame int) int { return 1 + len(channel) + 2 + frame }

const (
	dataBodyFixed = 8 + 2     // first message number, record count
	fragBodyFixed = 8 + 4 + 1 // message number, total length, channel length
	nakBodyFixed  = 8 + 8 + 2 // target node, target epoch, range count
	nakRangeLen   = 16
	beatBodyFixed = 8 + 8 + 8 + 1
)

// dataBody is a DATA datagram's body: messages FirstMsg, FirstMsg+1, ...
type dataBody struct {
	FirstMsg uint64
	Records  []record
}

// fragBody is a FRAG datagram's body: bytes of message Msg.
type fragBody struct {
	Msg     uint64
	Total   uint32 // length of the whole message
	Channel string
	Chunk   []byte
}

// seqRange is an inclusive range of data sequence numbers.
type seqRange struct{ First, Last uint64 }

// nakBody asks Target (in session TargetEpoch) to retransmit Ranges.
type nakBody struct {
	Target      NodeID
	TargetEpoch uint64
	Ranges      []seqRange
}

// beatBody announces a sender's state. LastSeq is the last data sequence
// number it assigned (0: none yet); Oldest the oldest it can still
// retransmit (LastSeq+1 when it holds none); NextMsg the number its next
// message will get, so a receiver that has processed every sequence up to
// LastSeq knows exactly how many messages it missed.
type beatBody struct {
	Time    uint64 // TIMED HEARTBEAT only: the sender's clock, ns since 1970 (0: untimed)
	LastSeq uint64
	Oldest  uint64
	NextMsg uint64
	Name    string
}

// datagram is a decoded plaintext datagram; only the body matching
// Kind is set.
type datagram struct {
	header
	Data dataBody
	Frag fragBody
	Nak  nakBody
	Beat beatBody
	Ack  ackBody
}

// appendDataRecord appends one record of a DATA body.
func appendDataRecord(b []byte, channel string, frame []byte) []byte {
	b = append(b, byte(len(channel)))
	b = append(b, channel...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(frame)))
	return append(b, frame...)
}

func appendFragPrefix(b []byte, msg uint64, total uint32, channel string) []byte {
	b = binary.BigEndian.AppendUint64(b, msg)
	b = binary.BigEndian.AppendUint32(b, total)
	b = append(b, byte(len(channel)))
	return append(b, channel...)
}

func appendNak(b []byte, n *nakBody) []byte {
	b = append(b, n.Target[:]...)
	b = binary.BigEndian.AppendUint64(b, n.TargetEpoch)
	b = binary.BigEndian.AppendUint16(b, uint16(len(n.Ranges)))
	for _, r := range n.Ranges {
		b = binary.BigEndian.AppendUint64(b, r.First)
		b = binary.BigEndian.AppendUint64(b, r.Last)
	}
	return b
}

func appendBeat(b []byte, hb *beatBody) []byte {
	if hb.Time != 0 {
		b = binary.BigEndian.AppendUint64(b, hb.Time)
	}
	b = binary.BigEndian.AppendUint64(b, hb.LastSeq)
	b = binary.BigEndian.AppendUint64(b, hb.Oldest)
	b = binary.BigEndian.AppendUint64(b, hb.NextMsg)
	b = append(b, byte(len(hb.Name)))
	return append(b, hb.Name...)
}

// encodeDatagram encodes a plaintext datagram. It rejects values that
// decodeDatagram would reject, so decode(encode(d)) == d.
func encodeDatagram(d *datagram) ([]byte, error) {
	b := d.header.appendTo(make([]byte, 0, 256))
	if _, err := decodeHeader(b); err != nil {
		return nil, err
	}
	switch d.Kind {
	case kindData:
		if len(d.Data.Records) == 0 || len(d.Data.Records) > 0xffff {
			return nil, fmt.Errorf("netbus: data: %w: %d records", errBadCount, len(d.Data.Records))
		}
		b = binary.BigEndian.AppendUint64(b, d.Data.FirstMsg)
		b = binary.BigEndian.AppendUint16(b, uint16(len(d.Data.Records)))
		for _, r := range d.Data.Records {
			if len(r.Channel) > maxChannelLen || len(r.Frame) > 0xffff {
				return nil, fmt.Errorf("netbus: data: %w: channel %d, frame %d", errBadLength, len(r.Channel), len(r.Frame))
			}
			b = appendDataRecord(b, r.Channel, r.Frame)
		}
	case kindFrag:
		f := &d.Frag
		if len(f.Channel) > maxChannelLen || len(f.Chunk) == 0 || uint64(len(f.Chunk)) > uint64(f.Total) {
			return nil, fmt.Errorf("netbus: frag: %w: channel %d, chunk %d of %d", errBadLength, len(f.Channel), len(f.Chunk), f.Total)
		}
		b = appendFragPrefix(b, f.Msg, f.Total, f.Channel)
		b = append(b, f.Chunk...)
	case kindNak:
		if err := checkRanges(d.Nak.Ranges); err != nil {
			return nil, err
		}
		b = appendNak(b, &d.Nak)
	case kindAck:
		if d.Ack.Next == 0 || d.Ack.Next&ctrlBit != 0 {
			return nil, fmt.Errorf("netbus: ack: %w: next %d", errBadSeq, d.Ack.Next)
		}
		b = appendAck(b, &d.Ack)
	case kindHeartbeat, kindTimedBeat:
		if len(d.Beat.Name) > maxNameLen {
			return nil, fmt.Errorf("netbus: heartbeat: %w: name %d", errBadLength, len(d.Beat.Name))
		}
		if (d.Beat.Time != 0) != (d.Kind == kindTimedBeat) {
			return nil, fmt.Errorf("netbus: heartbeat: %w: time %d on kind %d", errBadSeq, d.Beat.Time, d.Kind)
		}
		b = appendBeat(b, &d.Beat)
	}
	// Whatever encodes must decode: validate the result with the decoder.
	if _, err := decodeDatagram(b); err != nil {
		return nil, err
	}
	return b, nil
}

func checkRanges(rs []seqRange) error {
	if len(rs) == 0 || len(rs) > 0xffff {
		return fmt.Errorf("netbus: nak: %w: %d ranges", errBadCount, len(rs))
	}
	for _, r := range rs {
		if r.First == 0 || r.First > r.Last || r.Last&ctrlBit != 0 {
			return fmt.Errorf("netbus: nak: %w: range %d-%d", errBadSeq, r.First, r.Last)
		}
	}
	return nil
}

// decodeDatagram decodes a whole plaintext datagram (header and body).
func decodeDatagram(b []byte) (datagram, error) {
	var d datagram
	h, err := decodeHeader(b)
	if err != nil {
		return d, err
	}
	if h.Flags&flagSealed != 0 {
		return d, fmt.Errorf("netbus: %w: sealed datagram given to the plaintext decoder", errBadFlags)
	}
	d.header = h
	body := b[headerLen:]
	switch h.Kind {
	case kindData:
		d.Data.FirstMsg, err = forEachRecord(body, func(ch []byte, frame []byte) {
			d.Data.Records = append(d.Data.Records, record{string(ch), frame})
		})
	case kindFrag:
		d.Frag, err = decodeFrag(body)
	case kindNak:
		d.Nak, err = decodeNak(body)
	case kindHeartbeat, kindTimedBeat:
		d.Beat, err = decodeBeat(h.Kind, body)
	case kindAck:
		d.Ack, err = decodeAck(body)
	}
	return d, err
}

// forEachRecord validates a DATA body and calls fn for each record. It
// validates the whole body before the first call, so a malformed body
// delivers nothing. The slices passed to fn alias body. A nil fn only
// validates.
func forEachRecord(body []byte, fn func(channel, frame []byte)) (firstMsg uint64, err error) {
	if len(body) < dataBodyFixed {
		return 0, fmt.Errorf("netbus: data: %w: body %d bytes", errTruncated, len(body))
	}
	firstMsg = binary.BigEndian.Uint64(body)
	n := int(binary.BigEndian.Uint16(body[8:]))
	if n == 0 {
		return 0, fmt.Errorf("netbus: data: %w: 0 records", errBadCount)
	}
	recs := body[dataBodyFixed:]
	for pass := 0; pass < 2 && (pass == 0 || fn != nil); pass++ {
		p := recs
		for i := 0; i < n; i++ {
			if len(p) < 1 {
				return 0, fmt.Errorf("netbus: data: record %d: %w", i, errTruncated)
			}
			cl := int(p[0])
			if len(p) < 1+cl+2 {
				return 0, fmt.Errorf("netbus: data: record %d: %w", i, errTruncated)
			}
			fl := int(binary.BigEndian.Uint16(p[1+cl:]))
			if len(p) < 1+cl+2+fl {
				return 0, fmt.Errorf("netbus: data: record %d: %w: frame %d bytes, %d left", i, errTruncated, fl, len(p)-3-cl)
			}
			if pass == 1 {
				fn(p[1:1+cl], p[3+cl:3+cl+fl:3+cl+fl])
			}
			p = p[3+cl+fl:]
		}
		if len(p) != 0 {
			return 0, fmt.Errorf("netbus: data: %w: %d bytes after %d records", errTrailing, len(p), n)
		}
	}
	return firstMsg, nil
}

func decodeFrag(body []byte) (fragBody, error) {
	var f fragBody
	if len(body) < fragBodyFixed {
		return f, fmt.Errorf("netbus: frag: %w: body %d bytes", errTruncated, len(body))
	}
	f.Msg = binary.BigEndian.Uint64(body)
	f.Total = binary.BigEndian.Uint32(body[8:])
	cl := int(body[12])
	if len(body) < fragBodyFixed+cl {
		return f, fmt.Errorf("netbus: frag: %w: channel", errTruncated)
	}
	f.Channel = string(body[13 : 13+cl])
	f.Chunk = body[13+cl:]
	if len(f.Chunk) == 0 || uint64(len(f.Chunk)) > uint64(f.Total) {
		return f, fmt.Errorf("netbus: frag: %w: chunk %d of %d", errBadLength, len(f.Chunk), f.Total)
	}
	return f, nil
}

func decodeNak(body []byte) (nakBody, error) {
	var n nakBody
	if len(body) < nakBodyFixed {
		return n, fmt.Errorf("netbus: nak: %w: body %d bytes", errTruncated, len(body))
	}
	copy(n.Target[:], body)
	n.TargetEpoch = binary.BigEndian.Uint64(body[8:])
	cnt := int(binary.BigEndian.Uint16(body[16:]))
	rest := body[nakBodyFixed:]
	if len(rest) != cnt*nakRangeLen {
		if len(rest) < cnt*nakRangeLen {
			return n, fmt.Errorf("netbus: nak: %w: %d ranges in %d bytes", errTruncated, cnt, len(rest))
		}
		return n, fmt.Errorf("netbus: nak: %w: %d bytes after %d ranges", errTrailing, len(rest)-cnt*nakRangeLen, cnt)
	}
	n.Ranges = make([]seqRange, cnt)
	for i := range n.Ranges {
		n.Ranges[i].First = binary.BigEndian.Uint64(rest[i*16:])
		n.Ranges[i].Last = binary.BigEndian.Uint64(rest[i*16+8:])
	}
	return n, checkRanges(n.Ranges)
}

// decodeBeat decodes a HEARTBEAT body, or a TIMED HEARTBEAT's: the
// sender's clock (not 0), then a HEARTBEAT body.
func decodeBeat(kind uint8, body []byte) (beatBody, error) {
	var hb beatBody
	if kind == kindTimedBeat {
		if len(body) < 8 {
			return hb, fmt.Errorf("netbus: heartbeat: %w: body %d bytes", errTruncated, len(body))
		}
		if hb.Time = binary.BigEndian.Uint64(body); hb.Time == 0 {
			return hb, fmt.Errorf("netbus: heartbeat: %w: time 0", errBadSeq)
		}
		body = body[8:]
	}
	if len(body) < beatBodyFixed {
		return hb, fmt.Errorf("netbus: heartbeat: %w: body %d bytes", errTruncated, len(body))
	}
	hb.LastSeq = binary.BigEndian.Uint64(body)
	hb.Oldest = binary.BigEndian.Uint64(body[8:])
	hb.NextMsg = binary.BigEndian.Uint64(body[16:])
	nl := int(body[24])
	switch {
	case len(body) < beatBodyFixed+nl:
		return hb, fmt.Errorf("netbus: heartbeat: %w: name", errTruncated)
	case len(body) > beatBodyFixed+nl:
		return hb, fmt.Errorf("netbus: heartbeat: %w: %d bytes", errTrailing, len(body)-beatBodyFixed-nl)
	case hb.LastSeq&ctrlBit != 0 || hb.Oldest == 0 || hb.Oldest > hb.LastSeq+1:
		return hb, fmt.Errorf("netbus: heartbeat: %w: last %d, oldest %d", errBadSeq, hb.LastSeq, hb.Oldest)
	case !utf8.Valid(body[25 : 25+nl]):
		// The name reaches logs, metrics labels and terminals.
		return hb, fmt.Errorf("netbus: heartbeat: %w: not UTF-8", errBadName)
	}
	hb.Name = string(body[25 : 25+nl])
	return hb, nil
}
