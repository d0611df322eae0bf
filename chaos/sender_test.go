package chaos

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/netcluster/netcluster"
)

// senderEnv, set to "dir agent count", makes the test binary a sender
// process (TestMain): it connects agent to channel A of the server in dir
// and emits numbered messages, "count" of them and then closes cleanly
// (count > 0), or until it is killed (0), 2 minutes at most. It prints
// "ready" once connected, then "accepted N" every 1024 messages and "closed"
// after a clean Close.
const senderEnv = "CHAOS_SENDER"

func senderMain() int {
	f := strings.Fields(os.Getenv(senderEnv))
	if len(f) != 3 {
		fmt.Fprintf(os.Stderr, "%s: want \"dir agent count\", got %q\n", senderEnv, os.Getenv(senderEnv))
		return 2
	}
	count, err := strconv.ParseUint(f[2], 10, 64)
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: count: %v\n", senderEnv, err)
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	a, err := netcluster.Connect(ctx, "A", netcluster.WithSocketDir(f[0]), netcluster.WithAgentID(f[1]),
		netcluster.WithReconnectWait(10*time.Millisecond, 250*time.Millisecond), netcluster.WithBufferSize(1<<20))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	out := bufio.NewWriter(os.Stdout)
	fmt.Fprintln(out, "ready")
	out.Flush()
	data := make([]byte, 128)
	for n := uint64(1); (count == 0 || n <= count) && ctx.Err() == nil; n++ {
		binary.BigEndian.PutUint64(data, n)
		for {
			err := a.EmitRaw(ctx, "n", data)
			if err == nil {
				break
			}
			if !errors.Is(err, netcluster.ErrBufferFull) {
				fmt.Fprintf(os.Stderr, "emit %d: %v\n", n, err)
				return 1
			}
			time.Sleep(time.Millisecond)
		}
		if n%1024 == 0 {
			fmt.Fprintln(out, "accepted", n)
			out.Flush()
		}
	}
	if err := a.Close(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "close:", err)
		return 1
	}
	fmt.Fprintln(out, "closed")
	out.Flush()
	return 0
}

// senderProc is a sender process.
type senderProc struct {
	cmd      *exec.Cmd
	accepted atomic.Uint64 // its last "accepted" report
	closed   chan struct{}
	done     chan struct{}
	stderr   strings.Builder
}

// startSender starts a sender process for agent id (count as in
// senderEnv) and waits until it is connected.
func startSender(t *testing.T, dir, id string, count uint64) *senderProc {
	t.Helper()
	p := &senderProc{closed: make(chan struct{}), done: make(chan struct{})}
	p.cmd = exec.Command(os.Args[0], "-test.run=^$")
	p.cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s %s %d", senderEnv, dir, id, count))
	p.cmd.Stderr = &p.stderr
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan struct{})
	go func() {
		defer close(p.done)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "ready":
				close(ready)
			case line == "closed":
				close(p.closed)
			case strings.HasPrefix(line, "accepted "):
				n, _ := strconv.ParseUint(strings.TrimPrefix(line, "accepted "), 10, 64)
				p.accepted.Store(n)
			}
		}
		io.Copy(io.Discard, stdout)
		p.cmd.Wait()
	}()
	t.Cleanup(func() { p.cmd.Process.Kill(); <-p.done })
	select {
	case <-ready:
	case <-p.done:
		t.Fatalf("sender %s exited before it connected: %s", id, p.stderr.String())
	case <-time.After(30 * time.Second):
		t.Fatalf("sender %s not connected after 30 s", id)
	}
	return p
}
