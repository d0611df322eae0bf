package netbus

// Test hooks for package netbus_test.

// Kinds, for filters.
const (
	KindData      = kindData
	KindFrag      = kindFrag
	KindNak       = kindNak
	KindHeartbeat = kindHeartbeat
)

// PeekHeader returns a datagram's kind, sequence and fragment index
// (sealed or not), ok false if the header does not decode.
func PeekHeader(b []byte) (kind uint8, seq uint64, frag uint16, ok bool) {
	h, err := decodeHeader(b)
	return h.Kind, h.Seq, h.FragIndex, err == nil
}
