package chaos

import (
	"os"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	if os.Getenv(senderEnv) != "" {
		os.Exit(senderMain()) // this binary run as a sender process (sender_test.go)
	}
	goleak.VerifyTestMain(m)
}
