package netbus

import (
	"bytes"
	"crypto/cipher"
	"encoding/binary"
	"errors"
	"fmt"

	"golang.org/x/crypto/chacha20poly1305"
)

// Key is one entry of a keyring: a 32-byte secret and the id that names it
// on the wire.
type Key struct {
	ID     uint8
	Secret []byte // exactly 32 bytes
}

// Sealing and opening errors.
var (
	errNoKeys     = errors.New("sealed datagram but no keys configured")
	errPlaintext  = errors.New("plaintext datagram but keys are required")
	errUnknownKey = errors.New("unknown key id")
	errAuth       = errors.New("authentication failed")
)

// keyring holds the AEADs of a node. The first key seals; every key opens,
// chosen by the key id in the header. Rotation without downtime takes three
// rollouts: [old, new] everywhere (new can open), then [new, old] (new
// seals; old still opens stragglers and retransmissions), then [new].
type keyring struct {
	sealID  uint8
	seal    cipher.AEAD
	open    [256]cipher.AEAD
	secrets [256][]byte // for the session subkeys (crypto_session.go)

	// This node's session (forSession): its nonce prefix, and the sealing
	// key's AEAD under that session's subkey.
	sessPrefix [16]byte
	sessSeal   cipher.AEAD
}

// newKeyring builds a keyring; keys[0] seals. It returns nil, nil for no
// keys (plaintext).
func newKeyring(keys []Key) (*keyring, error) {
	if len(keys) == 0 {
		return nil, nil
	}
	kr := &keyring{sealID: keys[0].ID}
	for i, k := range keys {
		if len(k.Secret) != chacha20poly1305.KeySize {
			return nil, fmt.Errorf("netbus: key %d (id %d): secret is %d bytes, want %d", i, k.ID, len(k.Secret), chacha20poly1305.KeySize)
		}
		if kr.open[k.ID] != nil {
			return nil, fmt.Errorf("netbus: key %d: duplicate key id %d", i, k.ID)
		}
		a, err := chacha20poly1305.NewX(k.Secret)
		if err != nil {
			return nil, fmt.Errorf("netbus: key %d (id %d): %w", i, k.ID, err)
		}
		kr.open[k.ID] = a
		kr.secrets[k.ID] = bytes.Clone(k.Secret)
	}
	kr.seal = kr.open[keys[0].ID]
	return kr, nil
}

// nonceFor derives the 24-byte XChaCha20 nonce from the header: node id,
// session epoch and sequence number, exactly the 24 bytes they occupy.
//
// Why it never repeats under one key: a nonce names one (process, session,
// sequence). The node id is 64 random bits drawn at process start and the
// epoch is that start's wall-clock time in ns, so two sending processes
// share both only by a 2^-64 accident on top of starting in the same
// nanosecond. Within a process, data and control datagrams use disjoint
// sequence spaces (ctrlBit) and each space is a counter that only grows.
// A retransmission reuses a nonce, but it resends the identical sealed
// bytes (same key, header and plaintext), so the ciphertext is the same
// and nothing leaks; the sender never re-seals a sequence with different
// content. Because the nonce is carried by the header, it costs no bytes.
func nonceFor(h []byte) []byte { return h[10:headerLen] }

// seal encrypts the body that follows the header in dgram[:n] in place and
// appends the tag; dgram[:headerLen] must already hold the header with
// flagSealed and the sealing key id. It returns dgram[:n+tagLen] (dgram's
// capacity must allow it).
func (kr *keyring) sealInPlace(dgram []byte) []byte {
	var n [chacha20poly1305.NonceSize]byte
	return kr.sealWith(dgram, &n)
}

// sealWith is sealInPlace with a scratch nonce n (the packer's: none is
// allocated per datagram).
func (kr *keyring) sealWith(dgram []byte, n *[chacha20poly1305.NonceSize]byte) []byte {
	hdr := dgram[:headerLen]
	if kr.sessSeal != nil && hdr[5] == kr.sealID && [16]byte(hdr[10:26]) == kr.sessPrefix {
		return kr.sessSeal.Seal(hdr, innerNonce(n, hdr), dgram[headerLen:], hdr)
	}
	return kr.seal.Seal(hdr, nonceFor(hdr), dgram[headerLen:], hdr)
}

// sealDatagram is the pure form of sealing: it returns a new sealed copy of
// a plaintext datagram (header + body) with the flag and key id set.
func (kr *keyring) sealDatagram(plain []byte) []byte {
	out := make([]byte, len(plain), len(plain)+tagLen)
	copy(out, plain)
	out[4] |= flagSealed
	out[5] = kr.sealID
	return kr.sealInPlace(out)
}

// openDatagram checks dgram's header, and authenticates and decrypts its
// body in place when it is sealed. kr may be nil (plaintext node). The
// returned body aliases dgram. Errors wrap errTruncated... (from
// decodeHeader), errNoKeys, errPlaintext, errUnknownKey or errAuth.
func (kr *keyring) openDatagram(dgram []byte) (header, []byte, error) {
	return kr.openCached(dgram, nil)
}

// openCached is openDatagram with the subkeys of sessions already
// authenticated kept in c (nil: none).
func (kr *keyring) openCached(dgram []byte, c *openCache) (header, []byte, error) {
	h, err := decodeHeader(dgram)
	if err != nil {
		return h, nil, err
	}
	sealed := h.Flags&flagSealed != 0
	switch {
	case kr == nil && !sealed:
		return h, dgram[headerLen:], nil
	case kr == nil:
		return h, nil, fmt.Errorf("netbus: open: %w", errNoKeys)
	case !sealed:
		return h, nil, fmt.Errorf("netbus: open: %w", errPlaintext)
	}
	a := kr.open[h.KeyID]
	if a == nil {
		return h, nil, fmt.Errorf("netbus: open: %w %d", errUnknownKey, h.KeyID)
	}
	if len(dgram) < headerLen+tagLen {
		return h, nil, fmt.Errorf("netbus: open: %w: sealed body %d bytes", errTruncated, len(dgram)-headerLen)
	}
	hdr := dgram[:headerLen]
	var body []byte
	if sa := c.lookup(kr, h.KeyID, hdr[10:26]); sa != nil {
		body, err = sa.Open(dgram[headerLen:headerLen], innerNonce(&c.nonce, hdr), dgram[headerLen:], hdr)
	} else {
		body, err = a.Open(dgram[headerLen:headerLen], nonceFor(hdr), dgram[headerLen:], hdr)
		if err == nil && c != nil {
			c.put(kr, h.KeyID, hdr[10:26])
		}
	}
	if err != nil {
		return h, nil, fmt.Errorf("netbus: open: key %d: %w", h.KeyID, errAuth)
	}
	return h, body, nil
}

// putSeq is a helper for tests and tools that patch a header's sequence.
func putSeq(hdr []byte, seq uint64) { binary.BigEndian.PutUint64(hdr[26:], seq) }
