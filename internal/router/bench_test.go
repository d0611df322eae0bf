package router

import (
	"strconv"
	"testing"
)

// BenchmarkMatchLiteral is the common case: a cache hit for an event name
// that one subscriber listens to literally.
func BenchmarkMatchLiteral(b *testing.B) {
	ix := NewIndex[int]()
	for i := range 100 {
		if err := ix.Add(i, "chat.room"+strconv.Itoa(i)); err != nil {
			b.Fatal(err)
		}
	}
	event := []byte("chat.room42")
	ix.Match(event)
	b.ReportAllocs()
	for b.Loop() {
		ix.Match(event)
	}
}

// add100Regex registers 100 subscribers, each with its own regexp; the
// event "chat.room42" matches 10 of them.
func add100Regex(b *testing.B, ix *Index[int]) {
	for i := range 100 {
		if err := ix.Add(i, `chat\.room`+strconv.Itoa(i%10)+`[0-9]*`); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkMatch100Regex is a cache hit with 100 regexp listeners.
func BenchmarkMatch100Regex(b *testing.B) {
	ix := NewIndex[int]()
	add100Regex(b, ix)
	event := []byte("chat.room42")
	if got := len(ix.Match(event)); got != 10 {
		b.Fatalf("%d subscribers match, want 10", got)
	}
	b.ReportAllocs()
	for b.Loop() {
		ix.Match(event)
	}
}

// BenchmarkMatchMiss is the worst case: every name is new, as under a flood
// of random names, so each Match runs the 100 regexps and updates the cache.
func BenchmarkMatchMiss(b *testing.B) {
	ix := NewIndex[int]()
	add100Regex(b, ix)
	const n = 1 << 16 // far more names than the cache holds
	events := make([][]byte, n)
	for i := range events {
		events[i] = []byte("chat.room" + strconv.Itoa(i))
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		ix.Match(events[i%n])
		i++
	}
}

// BenchmarkMatchMissTemplates is a miss with 10,000 subscribers each
// listening to its own name, "user.<n>": RE2 reads the '.' as a wildcard, so
// these are templates, found by shape rather than by trying each pattern.
func BenchmarkMatchMissTemplates(b *testing.B) {
	ix := NewIndex[int]()
	const subs = 10000
	for i := range subs {
		if err := ix.Add(i, "user."+strconv.Itoa(i)); err != nil {
			b.Fatal(err)
		}
	}
	events := make([][]byte, 1<<16)
	for i := range events {
		events[i] = []byte("user." + strconv.Itoa(i%(2*subs)))
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		ix.Match(events[i%len(events)])
		i++
	}
}

// BenchmarkAddRemove measures subscription churn against a warm cache:
// adding and removing a literal, a template and a regexp listener.
func BenchmarkAddRemove(b *testing.B) {
	for _, pattern := range []string{"chat_room7", "chat.room7", `chat\.room[0-9]`} {
		b.Run(pattern, func(b *testing.B) {
			ix := NewIndex[int]()
			add100Regex(b, ix)
			for i := range 1000 {
				ix.Match([]byte("chat.room" + strconv.Itoa(i)))
			}
			b.ReportAllocs()
			for b.Loop() {
				if err := ix.Add(-1, pattern); err != nil {
					b.Fatal(err)
				}
				ix.Remove(-1, pattern)
			}
		})
	}
}

// BenchmarkMatchParallel is BenchmarkMatch100Regex from every P at once; it
// shows the cost of sharing the read lock.
func BenchmarkMatchParallel(b *testing.B) {
	ix := NewIndex[int]()
	add100Regex(b, ix)
	event := []byte("chat.room42")
	ix.Match(event)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			ix.Match(event)
		}
	})
}

// BenchmarkPatternMatchBytes measures one pattern of each kind.
func BenchmarkPatternMatchBytes(b *testing.B) {
	event := []byte("chat.room42")
	for _, src := range []string{"chat_room42", `chat\.room42`, "chat.room42", ".*", `chat\.room[0-9]+`} {
		p, err := Compile(src)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(src, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				p.MatchBytes(event)
			}
		})
	}
}
