package router_test

import (
	"fmt"

	"github.com/netcluster/netcluster/internal/router"
)

func ExampleIndex() {
	ix := router.NewIndex[string]()
	ix.Add("alice", "log")
	ix.Add("bob", "log|audit")
	ix.Add("carol", "chat.room") // '.' is any character, as in RE2
	ix.Add("dave", `chat\.room`) // only "chat.room"

	fmt.Println(ix.Match([]byte("log")))
	fmt.Println(ix.Match([]byte("logs")))
	fmt.Println(ix.Match([]byte("chat.room")))
	fmt.Println(ix.Match([]byte("chat-room")))
	fmt.Println(ix.Patterns("bob"))
	// Output:
	// [alice bob]
	// []
	// [carol dave]
	// [carol]
	// [log|audit]
}
