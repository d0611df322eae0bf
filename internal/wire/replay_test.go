package wire_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"testing"

	"github.com/netcluster/netcluster/internal/wire"
)

// testdata/replay.json holds the vectors of the Replay and ReplayEnd
// frames.

type replayFile struct {
	Comment string
	Frames  []struct {
		Name        string
		Description string
		Replay      *wire.Replay
		ReplayEnd   *wire.ReplayEnd `json:"replayEnd"`
		Hex         string
	}
}

func loadReplay(tb testing.TB) *replayFile {
	tb.Helper()
	b, err := os.ReadFile("testdata/replay.json")
	if err != nil {
		tb.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var rf replayFile
	if err := dec.Decode(&rf); err != nil {
		tb.Fatalf("testdata/replay.json: %v", err)
	}
	if len(rf.Frames) == 0 {
		tb.Fatal("testdata/replay.json: no frames")
	}
	return &rf
}

func TestReplayVectors(t *testing.T) {
	for _, v := range loadReplay(t).Frames {
		want := unhex(v.Hex)
		var got []byte
		switch {
		case v.Replay != nil:
			got = wire.AppendReplay(nil, *v.Replay)
			r, err := wire.ParseReplay(want[wire.HeaderLen:])
			if err != nil || r != *v.Replay {
				t.Errorf("%s: parsed %+v, %v; want %+v", v.Name, r, err, *v.Replay)
			}
		case v.ReplayEnd != nil:
			got = wire.AppendReplayEnd(nil, *v.ReplayEnd)
			e, err := wire.ParseReplayEnd(want[wire.HeaderLen:])
			if err != nil || e != *v.ReplayEnd {
				t.Errorf("%s: parsed %+v, %v; want %+v", v.Name, e, err, *v.ReplayEnd)
			}
		default:
			t.Fatalf("%s: no fields", v.Name)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s: encoded\n got %x\nwant %x", v.Name, got, want)
		}
	}
}

func TestReplayMalformed(t *testing.T) {
	if _, err := wire.ParseReplay([]byte{0, 1, 2}); !errors.Is(err, wire.ErrTruncated) {
		t.Errorf("short replay: %v, want ErrTruncated", err)
	}
	p := wire.AppendReplayEnd(nil, wire.ReplayEnd{ID: 1})[wire.HeaderLen:]
	if _, err := wire.ParseReplayEnd(append(p, 0)); !errors.Is(err, wire.ErrTrailing) {
		t.Errorf("replay end with a trailing byte: %v, want ErrTrailing", err)
	}
	if wire.TypeName(wire.TypeReplay) != "replay" || wire.TypeName(wire.TypeReplayEnd) != "replayend" {
		t.Error("TypeName does not name the replay frames")
	}
}

// FuzzReplayFrames decodes random payloads as Replay and ReplayEnd: no
// panic, only truncation or trailing-byte errors, and what decodes
// re-encodes to the same frame.
func FuzzReplayFrames(f *testing.F) {
	for _, v := range loadReplay(f).Frames {
		b := unhex(v.Hex)
		f.Add(b[4], b[wire.HeaderLen:])
		f.Add(b[4], b[wire.HeaderLen:len(b)-1])
	}
	f.Fuzz(func(t *testing.T, typ byte, p []byte) {
		frame := append(wire.AppendHeader(nil, wire.TypeReplay+typ%2, len(p)), p...)
		var again []byte
		var err error
		if typ%2 == 0 {
			var r wire.Replay
			if r, err = wire.ParseReplay(p); err == nil {
				again = wire.AppendReplay(nil, r)
			}
		} else {
			var e wire.ReplayEnd
			if e, err = wire.ParseReplayEnd(p); err == nil {
				again = wire.AppendReplayEnd(nil, e)
			}
		}
		if err != nil {
			if !errors.Is(err, wire.ErrTruncated) && !errors.Is(err, wire.ErrTrailing) {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		if !bytes.Equal(again, frame) {
			t.Fatalf("re-encoded:\n got %x\nwant %x", again, frame)
		}
	})
}

// TestReplayNumbers pins the replay frame types and flag.
func TestReplayNumbers(t *testing.T) {
	if wire.TypeReplay != 18 || wire.TypeReplayEnd != 19 || wire.FlagReplayed != 2 || wire.MaxReplay != 10000 {
		t.Errorf("TypeReplay %d, TypeReplayEnd %d, FlagReplayed %d, MaxReplay %d",
			wire.TypeReplay, wire.TypeReplayEnd, wire.FlagReplayed, wire.MaxReplay)
	}
}
