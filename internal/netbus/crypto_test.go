package netbus

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

func secret(b byte) []byte { return bytes.Repeat([]byte{b}, 32) }

func plainVector(t testing.TB, name string) []byte {
	t.Helper()
	for _, v := range vectors {
		if v.name == name {
			b, err := encodeDatagram(&v.d)
			if err != nil {
				t.Fatal(err)
			}
			return b
		}
	}
	t.Fatalf("no vector %s", name)
	return nil
}

func mustKeyring(t testing.TB, keys ...Key) *keyring {
	t.Helper()
	kr, err := newKeyring(keys)
	if err != nil {
		t.Fatal(err)
	}
	return kr
}

func TestKeyringConfig(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		keys []Key
		ok   bool
	}{
		{"none", nil, true},
		{"one", []Key{{1, secret(1)}}, true},
		{"two", []Key{{2, secret(2)}, {1, secret(1)}}, true},
		{"short", []Key{{1, secret(1)[:16]}}, false},
		{"duplicate-id", []Key{{1, secret(1)}, {1, secret(2)}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if _, err := newKeyring(tt.keys); (err == nil) != tt.ok {
				t.Fatalf("newKeyring: err %v, want ok=%v", err, tt.ok)
			}
		})
	}
}

// TestSealVectors pins the sealed encoding: the nonce comes from the
// header, so sealing is deterministic.
func TestSealVectors(t *testing.T) {
	t.Parallel()
	kr := mustKeyring(t, Key{7, secret(0xaa)})
	path := filepath.Join("testdata", "sealed.txt")
	if *update {
		var buf bytes.Buffer
		buf.WriteString("# plaintext vectors sealed with key id 7, secret 32 x 0xaa (XChaCha20-Poly1305)\n")
		for _, v := range vectors {
			fmt.Fprintf(&buf, "%s %x\n", v.name, kr.sealDatagram(plainVector(t, v.name)))
		}
		if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want := readVectors(t, path)
	for _, v := range vectors {
		plain := plainVector(t, v.name)
		got := kr.sealDatagram(plain)
		if !bytes.Equal(got, want[v.name]) {
			t.Errorf("%s: seal:\n got %x\nwant %x", v.name, got, want[v.name])
		}
		h, body, err := kr.openDatagram(append([]byte(nil), want[v.name]...))
		if err != nil {
			t.Fatalf("%s: open: %v", v.name, err)
		}
		if h.KeyID != 7 || h.Flags != flagSealed || !bytes.Equal(body, plain[headerLen:]) {
			t.Errorf("%s: open: header %+v body %x", v.name, h, body)
		}
	}
}

func TestOpenRejects(t *testing.T) {
	t.Parallel()
	k1 := Key{1, secret(1)}
	sealer := mustKeyring(t, k1)
	sealed := sealer.sealDatagram(plainVector(t, "data-batch"))
	plain := plainVector(t, "data-batch")
	flip := func(i int) []byte {
		b := append([]byte(nil), sealed...)
		b[i] ^= 0x01
		return b
	}
	tests := []struct {
		name string
		kr   *keyring
		in   []byte
		want error
	}{
		{"plaintext-to-keyed", sealer, plain, errPlaintext},
		{"sealed-to-plain", nil, sealed, errNoKeys},
		{"unknown-key-id", mustKeyring(t, Key{2, secret(1)}), sealed, errUnknownKey},
		{"wrong-secret-same-id", mustKeyring(t, Key{1, secret(9)}), sealed, errAuth},
		{"tampered-seq", sealer, flip(33), errAuth},
		{"tampered-node", sealer, flip(12), errAuth},
		{"tampered-body", sealer, flip(headerLen + 3), errAuth},
		{"tampered-tag", sealer, flip(len(sealed) - 1), errAuth},
		{"truncated-tag", sealer, sealed[:len(sealed)-1], errAuth},
		{"truncated-to-header", sealer, sealed[:headerLen+tagLen-1], errTruncated},
		{"unsealed-flag-cleared", sealer, func() []byte { b := append([]byte(nil), sealed...); b[4], b[5] = 0, 0; return b }(), errPlaintext},
		{"key-id-changed", mustKeyring(t, k1, Key{2, secret(2)}), func() []byte { b := append([]byte(nil), sealed...); b[5] = 2; return b }(), errAuth},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, _, err := tt.kr.openDatagram(append([]byte(nil), tt.in...))
			if !errors.Is(err, tt.want) {
				t.Fatalf("open: got %v, want %v", err, tt.want)
			}
		})
	}
}

func TestKeyringRotation(t *testing.T) {
	t.Parallel()
	k1, k2 := Key{1, secret(1)}, Key{2, secret(2)}
	old, both, next := mustKeyring(t, k1), mustKeyring(t, k2, k1), mustKeyring(t, k2)
	plain := plainVector(t, "data-one")
	open := func(kr *keyring, b []byte) error {
		_, _, err := kr.openDatagram(append([]byte(nil), b...))
		return err
	}
	if err := open(both, old.sealDatagram(plain)); err != nil {
		t.Errorf("[k2,k1] cannot open k1: %v", err)
	}
	if err := open(old, both.sealDatagram(plain)); !errors.Is(err, errUnknownKey) {
		t.Errorf("[k1] opened what [k2,k1] sealed: %v", err)
	}
	if err := open(next, both.sealDatagram(plain)); err != nil {
		t.Errorf("[k2] cannot open what [k2,k1] sealed: %v", err)
	}
}

// FuzzOpen: no input makes open panic, and only the sealer's own
// datagrams authenticate.
func FuzzOpen(f *testing.F) {
	kr := mustKeyring(f, Key{1, secret(1)})
	for _, v := range vectors {
		f.Add(kr.sealDatagram(plainVector(f, v.name)))
	}
	var cache openCache // the receiver's path: subkeys of authenticated sessions
	f.Fuzz(func(t *testing.T, b []byte) {
		_, want, werr := kr.openDatagram(bytes.Clone(b))
		for range 2 { // a miss, then (if it opened) a hit
			_, got, err := kr.openCached(bytes.Clone(b), &cache)
			if (err == nil) != (werr == nil) || !bytes.Equal(got, want) {
				t.Fatalf("cached open: %q, %v; uncached: %q, %v", got, err, want, werr)
			}
		}
	})
}
