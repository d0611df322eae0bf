package netbus

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"testing"
)

// The session subkey seals and opens exactly as XChaCha20-Poly1305 does:
// same bytes out, same datagrams accepted and refused, whether the subkey
// is cached or not, for this node's session and others'.
func TestSessionAEADMatchesX(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	secret := func() []byte {
		b := make([]byte, 32)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return b
	}
	kr := mustKeyring(t, Key{7, secret()}, Key{9, secret()})
	node, epoch := NodeID{1, 2, 3, 4, 5, 6, 7, 8}, uint64(1_700_000_000_000_000_001)
	krs := kr.forSession(node, epoch)
	if krs.sessSeal == nil || kr.sessSeal != nil {
		t.Fatal("forSession did not make a session keyring, or changed its receiver")
	}
	var cache openCache
	mk := func(n NodeID, ep, seq uint64, body int) []byte {
		h := header{Version: datagramVersion, Kind: kindData, Flags: flagSealed, KeyID: 7, Node: n, Epoch: ep, Seq: seq}
		d := h.appendTo(make([]byte, 0, headerLen+body+tagLen))
		for range body {
			d = append(d, byte(rng.Uint32()))
		}
		return d
	}
	for i := range 200 {
		n, ep := node, epoch
		if i%3 == 2 {
			n[0], ep = byte(i), epoch+uint64(i) // another session
		}
		plain := mk(n, ep, uint64(i)+1, rng.IntN(1400))
		want := kr.sealInPlace(bytes.Clone(plain)) // XChaCha20-Poly1305 itself
		got := krs.sealInPlace(bytes.Clone(plain))
		if !bytes.Equal(got, want) {
			t.Fatalf("datagram %d: session seal differs from XChaCha20-Poly1305", i)
		}
		for range 2 { // a miss, then a hit
			_, body, err := kr.openCached(bytes.Clone(want), &cache)
			if err != nil || !bytes.Equal(body, plain[headerLen:]) {
				t.Fatalf("datagram %d: open: %v", i, err)
			}
		}
		bad := bytes.Clone(want)
		bad[headerLen+rng.IntN(len(bad)-headerLen)] ^= 1 << rng.IntN(8)
		if _, _, err := kr.openCached(bad, &cache); !errors.Is(err, errAuth) {
			t.Fatalf("datagram %d: tampered datagram opened: %v", i, err)
		}
		seq := bytes.Clone(want)
		putSeq(seq, uint64(i)+1000) // the same session, another nonce
		if _, _, err := kr.openCached(seq, &cache); !errors.Is(err, errAuth) {
			t.Fatalf("datagram %d: datagram with a changed sequence opened: %v", i, err)
		}
	}
	if len(cache.m) != 1+66 {
		t.Errorf("cache holds %d sessions, want 67 (ours and 66 others)", len(cache.m))
	}
	// A new keyring under the same ids drops the cached subkeys.
	kr2 := mustKeyring(t, Key{7, secret()})
	d := kr2.sealInPlace(mk(node, epoch, 1, 100))
	if _, _, err := kr2.openCached(d, &cache); err != nil {
		t.Fatalf("new keyring: %v", err)
	}
	if _, _, err := kr.openCached(d, &cache); !errors.Is(err, errAuth) {
		t.Fatalf("old keyring opened the new key's datagram: %v", err)
	}
}

// Forged datagrams (that fail to open) add no subkey, so they cannot fill
// the cache.
func TestOpenCacheOnlyAuthenticated(t *testing.T) {
	kr := mustKeyring(t, Key{1, secret(1)})
	other := mustKeyring(t, Key{1, secret(2)})
	var cache openCache
	for i := range 100 {
		h := header{Version: datagramVersion, Kind: kindData, Flags: flagSealed, KeyID: 1, Node: NodeID{byte(i)}, Epoch: uint64(i) + 1, Seq: 1}
		d := other.sealInPlace(h.appendTo(make([]byte, 0, 100)))
		if _, _, err := kr.openCached(d, &cache); !errors.Is(err, errAuth) {
			t.Fatalf("forged datagram %d: %v", i, err)
		}
	}
	if len(cache.m) != 0 {
		t.Errorf("forged datagrams left %d subkeys", len(cache.m))
	}
}
