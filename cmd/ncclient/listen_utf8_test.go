package main

import (
	"encoding/base64"
	"encoding/json"
	"github.com/netcluster/netcluster/internal/testutil"
	"strings"
	"testing"
	"unicode/utf8"
)

// listen's lines stay valid UTF-8 and JSON when the data is not UTF-8:
// such data is shown in base64, with "base64": true, and decodes to the
// bytes sent.
func TestListenInvalidUTF8(t *testing.T) {
	t.Parallel()
	dir := testutil.ShortDir(t)
	srv := startServer(t, nil, dir)
	var out, errout syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- run(testCtx(t), []string{"-socketdir", dir, "listen", "A", "x", "-n", "3"}, strings.NewReader(""), &out, &errout)
	}()
	waitListening(t, srv, "A", "x")
	a := agent(t, dir, "A")
	ctx := testCtx(t)
	sent := []struct {
		data       []byte
		json       bool
		raw, isB64 bool
	}{
		{[]byte("bad \xff\xfe bytes"), false, true, true},
		{[]byte("\"bad \xff in JSON\""), true, false, true},
		{[]byte("fine é"), false, true, false},
	}
	for _, s := range sent {
		var err error
		if s.json {
			err = a.Emit(ctx, "x", json.RawMessage(s.data))
		} else {
			err = a.EmitRaw(ctx, "x", s.data)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != len(sent) {
		t.Fatalf("got %d lines, want %d:\n%q", len(lines), len(sent), out.String())
	}
	for i, line := range lines {
		if !utf8.ValidString(line) || !json.Valid([]byte(line)) {
			t.Errorf("line %d is not valid UTF-8 JSON: %q", i, line)
			continue
		}
		var l listenLine
		if err := json.Unmarshal([]byte(line), &l); err != nil {
			t.Fatal(err)
		}
		var shown string
		if err := json.Unmarshal(l.Data, &shown); err != nil {
			t.Fatalf("line %d: data is not a string: %s", i, line)
		}
		got := []byte(shown)
		if l.Base64 {
			var err error
			if got, err = base64.StdEncoding.DecodeString(shown); err != nil {
				t.Fatalf("line %d: %v", i, err)
			}
		}
		if string(got) != string(sent[i].data) || l.Raw != sent[i].raw || l.Base64 != sent[i].isB64 {
			t.Errorf("line %d: %s\nwant data %q, raw %v, base64 %v", i, line, sent[i].data, sent[i].raw, sent[i].isB64)
		}
	}
}
