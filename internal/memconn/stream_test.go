package memconn

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"testing"
)

// TestStreamRing checks the ring buffer against bytes.Buffer with random
// puts and gets that make it wrap and grow while wrapped.
func TestStreamRing(t *testing.T) {
	t.Parallel()
	for _, limit := range []int{1, 7, minBuffer + 3, 3 * minBuffer} {
		t.Run(fmt.Sprint("limit", limit), func(t *testing.T) {
			t.Parallel()
			s := newStream(limit)
			var model bytes.Buffer
			r := rand.New(rand.NewPCG(uint64(limit), 0))
			next := byte(0)
			wrapped := false
			for step := range 20000 {
				if r.IntN(2) == 0 {
					p := make([]byte, r.IntN(limit+limit/2+1))
					for i := range p {
						p[i] = next
						next++
					}
					want := min(len(p), limit-model.Len())
					if got := s.put(p); got != want {
						t.Fatalf("step %d: put(%d bytes) = %d, want %d", step, len(p), got, want)
					}
					model.Write(p[:want])
					next -= byte(len(p) - want) // unwritten bytes come next time
				} else {
					p := make([]byte, r.IntN(limit+1))
					n := s.get(p)
					want := model.Next(len(p))
					if !bytes.Equal(p[:n], want) {
						t.Fatalf("step %d: get = %v, want %v", step, p[:n], want)
					}
				}
				if s.n != model.Len() || s.n > limit || len(s.buf) > limit {
					t.Fatalf("step %d: n %d, buffer %d, model %d, limit %d", step, s.n, len(s.buf), model.Len(), limit)
				}
				wrapped = wrapped || s.start+s.n > len(s.buf)
			}
			if !wrapped && limit > 1 {
				t.Error("the ring never wrapped")
			}
		})
	}
}

// TestStreamGrowWrapped grows the buffer while its bytes wrap around the
// end, which random operations rarely do.
func TestStreamGrowWrapped(t *testing.T) {
	t.Parallel()
	s := newStream(3 * minBuffer)
	data := make([]byte, minBuffer+200)
	for i := range data {
		data[i] = byte(i * 7)
	}
	s.put(data[:minBuffer]) // fills the first buffer
	got := make([]byte, len(data))
	s.get(got[:100])
	s.put(data[minBuffer : minBuffer+50]) // wraps
	if s.start+s.n <= len(s.buf) {
		t.Fatal("setup: the ring does not wrap")
	}
	s.put(data[minBuffer+50:]) // grows
	if len(s.buf) <= minBuffer {
		t.Fatal("setup: the ring did not grow")
	}
	if n := s.get(got[100:]); n != len(data)-100 || !bytes.Equal(got, data) {
		t.Errorf("got %d bytes, differing from what was put", n)
	}
}
