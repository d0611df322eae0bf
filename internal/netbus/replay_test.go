package netbus

import "testing"

func TestReplayWindow(t *testing.T) {
	t.Parallel()
	type step struct {
		seq  uint64
		want replayVerdict
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"in-order", []step{{1, replayOK}, {2, replayOK}, {3, replayOK}, {2, replaySeen}}},
		{"reordered", []step{{5, replayOK}, {3, replayOK}, {4, replayOK}, {3, replaySeen}, {5, replaySeen}, {6, replayOK}}},
		{"window-edge", []step{{replayWindowSize + 10, replayOK}, {11, replayOK}, {10, replayOld}, {11, replaySeen}}},
		{"jump-clears", []step{{1, replayOK}, {1 + 3*replayWindowSize, replayOK}, {2 + 2*replayWindowSize, replayOK}, {1, replayOld}}},
		{"slide-reuses-bits", []step{{64, replayOK}, {64 + replayWindowSize, replayOK}, {65 + replayWindowSize - 1, replaySeen}}},
		{"word-boundaries", []step{{63, replayOK}, {64, replayOK}, {200, replayOK}, {128, replayOK}, {128, replaySeen}, {63, replaySeen}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var w replayWindow
			for i, s := range tt.steps {
				got := w.check(s.seq)
				if got != s.want {
					t.Fatalf("step %d: check(%d) = %d, want %d", i, s.seq, got, s.want)
				}
				if got == replayOK {
					w.accept(s.seq)
				}
			}
		})
	}
}

// TestReplayWindowModel compares the bitmap with a map over a long
// pseudo-random walk.
func TestReplayWindowModel(t *testing.T) {
	t.Parallel()
	var w replayWindow
	seen := map[uint64]bool{}
	var top uint64
	x := uint64(88172645463325252)
	for i := 0; i < 200000; i++ {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		var s uint64
		switch x % 10 {
		case 0:
			s = top + 1 + x%(3*replayWindowSize) // jumps
		default:
			s = top + 5 - min(top, x%(replayWindowSize+50)) // near the top, some out of the window
		}
		if s == 0 {
			continue
		}
		want := replayOK
		switch {
		case s <= top && top-s >= replayWindowSize:
			want = replayOld
		case seen[s]:
			want = replaySeen
		}
		if got := w.check(s); got != want {
			t.Fatalf("step %d: check(%d) top %d = %d, want %d", i, s, top, got, want)
		}
		if want == replayOK {
			w.accept(s)
			seen[s] = true
			top = max(top, s)
		}
	}
}
