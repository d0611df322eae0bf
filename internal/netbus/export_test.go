package netbus

import "time"

// Test hooks for package netbus_test.

// Kinds, for filters.
const (
	KindData      = kindData
	KindFrag      = kindFrag
	KindNak       = kindNak
	KindHeartbeat = kindTimedBeat // what a Bus sends
	KindOldBeat   = kindHeartbeat // untimed, as earlier versions sent
)

// PeekHeader returns a datagram's kind, sequence and fragment index
// (sealed or not), ok false if the header does not decode.
func PeekHeader(b []byte) (kind uint8, seq uint64, frag uint16, ok bool) {
	h, err := decodeHeader(b)
	return h.Kind, h.Seq, h.FragIndex, err == nil
}

// Forge builds a datagram as another node would: a heartbeat announcing
// lastSeq (KindHeartbeat: timed now; KindOldBeat), or a DATA datagram of sequence seq with
// one message. With key it is sealed, else plaintext.
func Forge(kind uint8, id NodeID, epoch, seq, lastSeq uint64, key *Key) []byte {
	h := header{Version: datagramVersion, Kind: kind, Node: id, Epoch: epoch, Seq: seq}
	var body []byte
	switch kind {
	case kindHeartbeat, kindTimedBeat:
		h.Seq |= ctrlBit
		hb := beatBody{LastSeq: lastSeq, Oldest: 1, NextMsg: lastSeq, Name: "forged"}
		if kind == kindTimedBeat {
			hb.Time = uint64(time.Now().UnixNano())
		}
		body = appendBeat(nil, &hb)
	case kindData:
		body = appendDataRecord(append(make([]byte, dataBodyFixed-2), 0, 1), "c", []byte("forged"))
		putUint64(body, seq)
	}
	d := append(h.appendTo(nil), body...)
	if key == nil {
		return d
	}
	kr, err := newKeyring([]Key{*key})
	if err != nil {
		panic(err)
	}
	return kr.sealDatagram(d)
}
