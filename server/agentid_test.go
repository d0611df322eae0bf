package server

import (
	"math/rand/v2"
	"regexp"
	"strings"
	"testing"
)

// TestValidAgentID checks validAgentID against the regexp it replaces, on
// chosen ids and on random ones drawn from the allowed bytes and a few
// others.
func TestValidAgentID(t *testing.T) {
	re := regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)
	ids := []string{"", "a", "A-z_0.9", strings.Repeat("x", 64), strings.Repeat("x", 65),
		"a b", "a/b", "é", "a\x00", "a\n", "-", ".", "_", "@", "[", "`", "{", "a:b"}
	const alphabet = "azAZ09._-/ @[`{\x00\xffé"
	r := rand.New(rand.NewPCG(1, 2))
	for range 20000 {
		n := r.IntN(70)
		var b strings.Builder
		for range n {
			b.WriteByte(alphabet[r.IntN(len(alphabet))])
		}
		ids = append(ids, b.String())
	}
	for _, id := range ids {
		if got, want := validAgentID(id), re.MatchString(id); got != want {
			t.Fatalf("validAgentID(%q) = %v, the regexp says %v", id, got, want)
		}
	}
}
