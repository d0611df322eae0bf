//go:build linux

package nettest

import (
	"os"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(run{m}) }

// run runs the tests, then removes the ncserver they shared.
type run struct{ m *testing.M }

func (r run) Run() int {
	defer func() {
		if serverBin.dir != "" {
			os.RemoveAll(serverBin.dir)
		}
	}()
	return r.m.Run()
}
