package wire_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/netcluster/netcluster/internal/wire"
)

// testdata/calls.json holds the vectors of the protocol version 2 frames
// (request/reply and queue groups), in the conventions of vectors.json.

type callsFile struct {
	Comment   string
	Frames    []callVector
	Malformed []malformedVector
}

type callVector struct {
	Name        string
	Description string
	Type        string
	Call        *callFields
	Answer      *answerFields
	Value       *uint64 // noresponders
	QueueListen *wire.QueueListen
	SID         *uint32 // queueunlisten
	QueueMsg    *queueMsgFields
	Hex         string
}

type callFields struct {
	ID  uint64
	Msg msgFields
}

type answerFields struct {
	ID  uint64
	To  wire.Addr
	Msg msgFields
}

type queueMsgFields struct {
	SID  uint32
	Msg  *msgFields  // a wrapped Msg, or
	Call *callFields // a wrapped Call
}

type malformedVector struct {
	Name        string
	Description string
	Hex         string
	Error       string
}

func loadCalls(tb testing.TB) *callsFile {
	tb.Helper()
	b, err := os.ReadFile("testdata/calls.json")
	if err != nil {
		tb.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var cf callsFile
	if err := dec.Decode(&cf); err != nil {
		tb.Fatalf("testdata/calls.json: %v", err)
	}
	if len(cf.Frames) == 0 || len(cf.Malformed) == 0 {
		tb.Fatal("testdata/calls.json: a section is empty")
	}
	return &cf
}

// callResult is what parseCallFrame returns: every field decoded, copied,
// with empty byte slices nil, so results compare with reflect.DeepEqual.
type callResult struct {
	ID      uint64
	To      wire.Addr
	Msg     wire.Msg
	Value   uint64
	Listen  wire.QueueListen
	SID     uint32
	Inner   byte // the type a QueueMsg wraps
	InnerID uint64
}

// parseCallFrame decodes a version 2 payload of type typ; a QueueMsg's
// wrapped frame is decoded too.
func parseCallFrame(typ byte, p []byte) (callResult, error) {
	var r callResult
	var err error
	switch typ {
	case wire.TypeCall:
		var v wire.MsgView
		r.ID, v, err = wire.ParseCall(p)
		r.Msg = normMsg(v.Msg())
	case wire.TypeAnswer:
		var to wire.AddrView
		var v wire.MsgView
		r.ID, to, v, err = wire.ParseAnswer(p)
		r.To, r.Msg = to.Addr(), normMsg(v.Msg())
	case wire.TypeNoResponders:
		r.Value, err = wire.ParseU64(p)
	case wire.TypeQueueListen:
		r.Listen, err = wire.ParseQueueListen(p)
	case wire.TypeQueueUnlisten:
		r.SID, err = wire.ParseQueueUnlisten(p)
	case wire.TypeQueueMsg:
		var inner []byte
		r.SID, r.Inner, inner, err = wire.ParseQueueMsg(p)
		if err == nil {
			var v wire.MsgView
			if r.Inner == wire.TypeCall {
				r.InnerID, v, err = wire.ParseCall(inner)
			} else {
				v, err = wire.ParseMsg(inner)
			}
			r.Msg = normMsg(v.Msg())
		}
	default:
		return r, fmt.Errorf("no parser for %s", wire.TypeName(typ))
	}
	return r, err
}

// encode appends the vector's frame with the matching Append function and
// returns it with the fields parseCallFrame must give back.
func (v *callVector) encode(tb testing.TB, dst []byte) ([]byte, callResult) {
	tb.Helper()
	set := 0
	for _, p := range []bool{v.Call != nil, v.Answer != nil, v.Value != nil, v.QueueListen != nil, v.SID != nil, v.QueueMsg != nil} {
		if p {
			set++
		}
	}
	if set != 1 {
		tb.Fatalf("vector %s: %d field groups set, want exactly 1", v.Name, set)
	}
	typ := typeByName(tb, v.Type)
	var r callResult
	switch {
	case typ == wire.TypeCall && v.Call != nil:
		m := v.Call.Msg.msg()
		r.ID, r.Msg = v.Call.ID, m
		return wire.AppendCall(dst, v.Call.ID, &m), r
	case typ == wire.TypeAnswer && v.Answer != nil:
		m := v.Answer.Msg.msg()
		r.ID, r.To, r.Msg = v.Answer.ID, v.Answer.To, m
		return wire.AppendAnswer(dst, v.Answer.ID, &v.Answer.To, &m), r
	case typ == wire.TypeNoResponders && v.Value != nil:
		r.Value = *v.Value
		return wire.AppendU64(dst, typ, *v.Value), r
	case typ == wire.TypeQueueListen && v.QueueListen != nil:
		r.Listen = *v.QueueListen
		return wire.AppendQueueListen(dst, *v.QueueListen), r
	case typ == wire.TypeQueueUnlisten && v.SID != nil:
		r.SID = *v.SID
		return wire.AppendQueueUnlisten(dst, *v.SID), r
	case typ == wire.TypeQueueMsg && v.QueueMsg != nil && (v.QueueMsg.Msg == nil) != (v.QueueMsg.Call == nil):
		q := v.QueueMsg
		r.SID = q.SID
		var inner []byte
		if q.Call != nil {
			m := q.Call.Msg.msg()
			r.Inner, r.InnerID, r.Msg = wire.TypeCall, q.Call.ID, m
			inner = wire.AppendCall(nil, q.Call.ID, &m)
		} else {
			m := q.Msg.msg()
			r.Inner, r.Msg = wire.TypeMsg, m
			inner = wire.AppendMsg(nil, &m)
		}
		return wire.AppendQueueMsg(dst, q.SID, inner), r
	}
	tb.Fatalf("vector %s: fields do not match type %s", v.Name, v.Type)
	return nil, r
}

func TestCallVectors(t *testing.T) {
	t.Parallel()
	cf := loadCalls(t)
	seen := map[byte]bool{}
	for _, v := range cf.Frames {
		t.Run("frame/"+v.Name, func(t *testing.T) {
			t.Parallel()
			want := unhex(v.Hex)
			typ := typeByName(t, v.Type)
			got, fields := v.encode(t, nil)
			if !bytes.Equal(got, want) {
				t.Fatalf("encode:\n got %x\nwant %x", got, want)
			}
			prefix := []byte("prefix")
			if got, _ := v.encode(t, bytes.Clone(prefix)); !bytes.Equal(got, append(prefix, want...)) {
				t.Fatalf("encode after a prefix:\n got %x\nwant %s%x", got, prefix, want)
			}
			if n := int(want[0])<<24 | int(want[1])<<16 | int(want[2])<<8 | int(want[3]); n != len(want)-4 {
				t.Errorf("length field = %d, want %d", n, len(want)-4)
			}
			if want[4] != typ {
				t.Errorf("type byte = %d, want %d (%s)", want[4], typ, v.Type)
			}
			switch {
			case v.Call != nil:
				m := v.Call.Msg.msg()
				if n := wire.CallSize(&m); n != len(want) {
					t.Errorf("CallSize = %d, frame is %d bytes", n, len(want))
				}
			case v.Answer != nil:
				m := v.Answer.Msg.msg()
				if n := wire.AnswerSize(&v.Answer.To, &m); n != len(want) {
					t.Errorf("AnswerSize = %d, frame is %d bytes", n, len(want))
				}
			}
			res, err := parseCallFrame(typ, want[wire.HeaderLen:])
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			if !reflect.DeepEqual(res, fields) {
				t.Fatalf("parse:\n got %#v\nwant %#v", res, fields)
			}
			rd := wire.NewReader(bufio.NewReader(bytes.NewReader(want)), wire.DefaultMaxFrame)
			f, err := rd.Next()
			if err != nil || f.Type != typ || !bytes.Equal(f.Raw, want) {
				t.Fatalf("Reader.Next = %d %x, %v; want %d %x", f.Type, f.Raw, err, typ, want)
			}
			if _, err := rd.Next(); err != io.EOF {
				t.Fatalf("Reader.Next after the frame: %v, want io.EOF", err)
			}
		})
		seen[typeByName(t, v.Type)] = true
	}
	for _, typ := range versionCallsTypes {
		if !seen[typ] {
			t.Errorf("no vector for frame type %s", wire.TypeName(typ))
		}
	}
	for _, v := range cf.Malformed {
		t.Run("malformed/"+v.Name, func(t *testing.T) {
			t.Parallel()
			b := unhex(v.Hex)
			if n := int(b[0])<<24 | int(b[1])<<16 | int(b[2])<<8 | int(b[3]); n != len(b)-4 {
				t.Fatalf("length field = %d, want %d", n, len(b)-4)
			}
			_, err := parseCallFrame(b[4], b[wire.HeaderLen:])
			if err == nil || !strings.Contains(err.Error(), v.Error) {
				t.Fatalf("parse error = %v, want one containing %q", err, v.Error)
			}
		})
	}
}

// versionCallsTypes are the frame types of protocol version 2.
var versionCallsTypes = []byte{wire.TypeCall, wire.TypeAnswer, wire.TypeNoResponders,
	wire.TypeQueueListen, wire.TypeQueueUnlisten, wire.TypeQueueMsg}

func TestCallNumbers(t *testing.T) {
	t.Parallel()
	for i, name := range []string{"call", "answer", "noresponders", "queuelisten", "queueunlisten", "queuemsg"} {
		typ := versionCallsTypes[i]
		if typ != byte(12+i) || wire.TypeName(typ) != name {
			t.Errorf("frame type %s = %d (%q), want %d", name, typ, wire.TypeName(typ), 12+i)
		}
	}
	if wire.VersionCalls != 2 || wire.MaxGroupLen != 255 || wire.CallOverhead != 8 || wire.QueueMsgOverhead != 4 {
		t.Errorf("VersionCalls %d, MaxGroupLen %d, CallOverhead %d, QueueMsgOverhead %d",
			wire.VersionCalls, wire.MaxGroupLen, wire.CallOverhead, wire.QueueMsgOverhead)
	}
}

// TestCallTruncation cuts every vector at every length: each proper
// prefix of a payload with no open-ended tail fails as truncated, and so
// does each prefix of the others that cuts a field.
func TestCallTruncation(t *testing.T) {
	t.Parallel()
	for _, v := range loadCalls(t).Frames {
		b := unhex(v.Hex)
		typ, p := b[4], b[wire.HeaderLen:]
		open := typ == wire.TypeCall || typ == wire.TypeAnswer || typ == wire.TypeQueueMsg
		for n := range len(p) {
			_, err := parseCallFrame(typ, p[:n])
			switch {
			case err == nil && !open:
				t.Errorf("%s cut to %d bytes: no error", v.Name, n)
			case err != nil && !errors.Is(err, wire.ErrTruncated):
				t.Errorf("%s cut to %d bytes: %v, want ErrTruncated", v.Name, n, err)
			}
		}
		if !open {
			if _, err := parseCallFrame(typ, append(bytes.Clone(p), 0)); !errors.Is(err, wire.ErrTrailing) {
				t.Errorf("%s with a byte more: %v, want ErrTrailing", v.Name, err)
			}
		}
	}
}

// TestQueueMsgWrapsRaw checks that AppendQueueMsg carries the wrapped
// frame's bytes unchanged, so a receiver can rebuild the frame exactly.
func TestQueueMsgWrapsRaw(t *testing.T) {
	t.Parallel()
	m := wire.Msg{Flags: wire.FlagJSON, Channel: "A", Agent: "a", Event: "e", Data: []byte(`"x"`)}
	for _, inner := range [][]byte{wire.AppendMsg(nil, &m), wire.AppendCall(nil, 42, &m)} {
		q := wire.AppendQueueMsg(nil, 7, inner)
		if len(q) != len(inner)+wire.QueueMsgOverhead+1 {
			t.Fatalf("queue msg is %d bytes, wrapped frame %d", len(q), len(inner))
		}
		sid, typ, payload, err := wire.ParseQueueMsg(q[wire.HeaderLen:])
		if err != nil || sid != 7 || typ != inner[4] {
			t.Fatalf("ParseQueueMsg = %d %d, %v", sid, typ, err)
		}
		rebuilt := append(wire.AppendHeader(nil, typ, len(payload)), payload...)
		if !bytes.Equal(rebuilt, inner) {
			t.Fatalf("rebuilt %x, want %x", rebuilt, inner)
		}
	}
}

// TestCallDocExamples checks that docs/PROTOCOL.md shows the bytes of the
// version 2 vectors its section 11 claims to show.
func TestCallDocExamples(t *testing.T) {
	t.Parallel()
	doc, err := os.ReadFile("../../docs/PROTOCOL.md")
	if err != nil {
		t.Fatal(err)
	}
	var blocks [][]byte
	var cur []byte
	for _, line := range append(strings.Split(string(doc), "\n"), "") {
		off, rest, ok := strings.Cut(line, "  ")
		hexPart, _, bar := strings.Cut(rest, "  |")
		if !ok || !bar || len(off) != 8 || strings.Trim(off, "0123456789abcdef") != "" {
			if cur != nil {
				blocks = append(blocks, cur)
				cur = nil
			}
			continue
		}
		cur = append(cur, unhex(hexPart)...)
	}
	for _, name := range []string{"call", "answer", "queuemsg-call"} {
		var want []byte
		for _, v := range loadCalls(t).Frames {
			if v.Name == name {
				want = unhex(v.Hex)
			}
		}
		found := false
		for _, b := range blocks {
			found = found || bytes.Equal(b, want)
		}
		if want == nil || !found {
			t.Errorf("docs/PROTOCOL.md has no hex dump of vector %s (% x)", name, want)
		}
	}
}
