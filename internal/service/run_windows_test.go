package service

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/windows/svc"
)

// These tests are compiled in CI (GOOS=windows go test -c) but have not been
// run on a Windows machine yet. They drive handler.Execute directly, without
// the service control manager.

type fakeLog struct {
	mu   sync.Mutex
	msgs []string
}

func (l *fakeLog) Info(eid uint32, msg string) error  { return l.add(msg) }
func (l *fakeLog) Error(eid uint32, msg string) error { return l.add(msg) }
func (l *fakeLog) add(msg string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.msgs = append(l.msgs, msg)
	return nil
}

// execute runs h.Execute and collects the states it reports.
func execute(h *handler, requests []svc.Cmd) (states []svc.State, specific bool, code uint32) {
	r := make(chan svc.ChangeRequest)
	s := make(chan svc.Status)
	type result struct {
		specific bool
		code     uint32
	}
	done := make(chan result)
	go func() {
		sp, c := h.Execute([]string{DefaultName}, r, s)
		done <- result{sp, c}
	}()
	for {
		select {
		case st := <-s:
			states = append(states, st.State)
			if st.State == svc.Running {
				for _, cmd := range requests {
					go func(cmd svc.Cmd) { r <- svc.ChangeRequest{Cmd: cmd} }(cmd)
				}
			}
		case res := <-done:
			return states, res.specific, res.code
		}
	}
}

func TestExecuteStop(t *testing.T) {
	ctxDone := make(chan struct{})
	h := &handler{log: &fakeLog{}, run: func(ctx context.Context) error {
		<-ctx.Done()
		close(ctxDone)
		return nil
	}}
	states, specific, code := execute(h, []svc.Cmd{svc.Stop})
	if specific || code != 0 {
		t.Errorf("exit = %v, %d, want false, 0", specific, code)
	}
	select {
	case <-ctxDone:
	case <-time.After(5 * time.Second):
		t.Fatal("run's ctx was not cancelled")
	}
	if len(states) < 3 || states[0] != svc.StartPending || states[1] != svc.Running || states[len(states)-1] != svc.StopPending {
		t.Errorf("states = %v, want StartPending, Running, …, StopPending", states)
	}
}

func TestExecuteRunFails(t *testing.T) {
	h := &handler{log: &fakeLog{}, run: func(ctx context.Context) error {
		return errors.New("boom")
	}}
	_, specific, code := execute(h, nil)
	if !specific || code != 1 {
		t.Errorf("exit = %v, %d, want true, 1", specific, code)
	}
	if h.err == nil || h.err.Error() != "boom" {
		t.Errorf("h.err = %v, want boom", h.err)
	}
}
