package harness

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// proc is a child process: a worker, ncserver, or a NATS server. Its
// standard output is read line by line; its standard error is kept for
// error messages.
type proc struct {
	name  string
	cmd   *exec.Cmd
	stdin io.WriteCloser
	lines chan string   // standard output, closed at its end
	done  chan struct{} // closed once the process has been waited for
	err   error         // from Wait, once done is closed
	errw  *tailBuffer
}

// startProc starts exe with args. ctx kills the process when it ends.
func startProc(ctx context.Context, name, exe string, args ...string) (*proc, error) {
	cmd := exec.CommandContext(ctx, exe, args...)
	cmd.WaitDelay = 2 * time.Second
	p := &proc{name: name, cmd: cmd, lines: make(chan string, 256), done: make(chan struct{}), errw: &tailBuffer{max: 16 << 10}}
	cmd.Stderr = p.errw
	var err error
	if p.stdin, err = cmd.StdinPipe(); err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			select {
			case p.lines <- sc.Text():
			default: // nobody is listening for chatter
			}
		}
		close(p.lines)
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

// failure describes how the process ended, with its last error output.
func (p *proc) failure(what string) error {
	msg := strings.TrimSpace(p.errw.String())
	if msg != "" {
		msg = ": " + msg
	}
	return fmt.Errorf("%s: %s (exit: %v)%s", p.name, what, p.err, msg)
}

// expect waits for a line starting with prefix and returns the rest. An
// ERR line, the end of output or ctx's end is an error.
func (p *proc) expect(ctx context.Context, prefix string) (string, error) {
	for {
		select {
		case l, ok := <-p.lines:
			if !ok {
				<-p.done
				return "", p.failure("exited before " + strings.TrimSpace(prefix))
			}
			if rest, ok := strings.CutPrefix(l, lineErr); ok {
				return "", fmt.Errorf("%s: %s", p.name, rest)
			}
			if rest, ok := strings.CutPrefix(l, prefix); ok {
				return rest, nil
			}
		case <-ctx.Done():
			return "", fmt.Errorf("%s: waiting for %q: %w", p.name, strings.TrimSpace(prefix), ctx.Err())
		}
	}
}

// report waits for the worker's Done line.
func (p *proc) report(ctx context.Context) (Report, error) {
	var r Report
	s, err := p.expect(ctx, lineDone)
	if err != nil {
		return r, err
	}
	if err := json.Unmarshal([]byte(s), &r); err != nil {
		return r, fmt.Errorf("%s: bad report %q: %w", p.name, s, err)
	}
	return r, nil
}

func (p *proc) send(line string) {
	io.WriteString(p.stdin, line+"\n")
}

// stop ends the process: SIGTERM if term is set, else the end of its
// standard input; a kill after the grace period. It waits for it.
func (p *proc) stop(term bool, grace time.Duration) {
	if term {
		p.cmd.Process.Signal(syscall.SIGTERM)
	}
	p.stdin.Close()
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-p.done:
	case <-t.C:
		p.cmd.Process.Kill()
		<-p.done
	}
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = append(t.b[:0], t.b[len(t.b)-t.max:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.b)
}

// rssBytes reads the resident set size of process pid from
// /proc/PID/status.
func rssBytes(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for l := range bytes.Lines(b) {
		if rest, ok := bytes.CutPrefix(l, []byte("VmRSS:")); ok {
			f := strings.Fields(string(rest)) // "12345 kB"
			if len(f) == 2 && f[1] == "kB" {
				kb, err := strconv.ParseInt(f[0], 10, 64)
				return kb << 10, err
			}
		}
	}
	return 0, fmt.Errorf("no VmRSS in /proc/%d/status", pid)
}

// clockTick is the unit of /proc/PID/stat's CPU times (USER_HZ, 100 on
// Linux everywhere).
const clockTick = 10 * time.Millisecond

// cpuTime returns the CPU time process pid has used, user and system, in
// nanoseconds, from /proc/PID/stat (10 ms resolution).
func cpuTime(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may hold spaces: count from its ")".
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 { // state is field 3; utime and stime are 14 and 15
		return 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("/proc/%d/stat: %w", pid, err)
	}
	return (utime + stime) * int64(clockTick), nil
}
