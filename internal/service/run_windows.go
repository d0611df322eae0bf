package service

import (
	"context"
	"fmt"
	"time"

	"golang.org/x/sys/windows/svc"
	"golang.org/x/sys/windows/svc/eventlog"
)

// Event IDs written to the event log.
const (
	eventStarted = 1
	eventStopped = 2
	eventFailed  = 3
)

// stopWaitHint is how long the service tells the service
// control manager each step of stopping may take. While run has not
// returned, Run reports progress twice as often.
const stopWaitHint = 10 * time.Second

// Run runs run as the Windows service name and returns when the service has
// stopped. It reports StartPending, then Running once run has been started,
// then StopPending; the service control manager records Stopped when Run
// returns, with exit code 1 if run failed. Stop and Shutdown requests cancel
// run's ctx; run should then shut down and return. Start, stop and run's
// error go to the event log under the source name (installed by Install).
//
// The service's arguments are those recorded by Install and are in os.Args;
// start parameters given to "sc start" are ignored. Call Run only when
// IsWindowsService reports true; it blocks the calling goroutine.
func Run(name string, run func(ctx context.Context) error) error {
	elog, err := eventlog.Open(name)
	if err != nil {
		return fmt.Errorf("netcluster: open event log %s: %w", name, err)
	}
	defer elog.Close()
	h := &handler{run: run, log: elog}
	if err := svc.Run(name, h); err != nil {
		elog.Error(eventFailed, fmt.Sprintf("service %s: %v", name, err))
		return fmt.Errorf("netcluster: run service %s: %w", name, err)
	}
	return h.err
}

// eventLogger is the part of *eventlog.Log that handler uses.
type eventLogger interface {
	Info(eid uint32, msg string) error
	Error(eid uint32, msg string) error
}

type handler struct {
	run func(ctx context.Context) error
	log eventLogger
	err error // run's result, read after svc.Run returns
}

// Execute implements svc.Handler.
func (h *handler) Execute(args []string, r <-chan svc.ChangeRequest, s chan<- svc.Status) (svcSpecificEC bool, exitCode uint32) {
	s <- svc.Status{State: svc.StartPending}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- h.run(ctx) }()

	const accepts = svc.AcceptStop | svc.AcceptShutdown
	s <- svc.Status{State: svc.Running, Accepts: accepts}
	h.log.Info(eventStarted, "netcluster server started")

	var err error
loop:
	for {
		select {
		case err = <-done:
			break loop // run returned by itself
		case c := <-r:
			switch c.Cmd {
			case svc.Interrogate:
				s <- c.CurrentStatus
			case svc.Stop, svc.Shutdown:
				cancel()
				err = waitStopping(done, s)
				break loop
			}
		}
	}
	s <- svc.Status{State: svc.StopPending, WaitHint: uint32(stopWaitHint / time.Millisecond)}
	h.err = err
	if err != nil {
		h.log.Error(eventFailed, fmt.Sprintf("netcluster server failed: %v", err))
		return true, 1
	}
	h.log.Info(eventStopped, "netcluster server stopped")
	return false, 0
}

// waitStopping waits for run to return, reporting StopPending with a rising
// checkpoint so that the service control manager knows it is progressing.
func waitStopping(done <-chan error, s chan<- svc.Status) error {
	tick := time.NewTicker(stopWaitHint / 2)
	defer tick.Stop()
	for checkpoint := uint32(1); ; checkpoint++ {
		s <- svc.Status{State: svc.StopPending, CheckPoint: checkpoint, WaitHint: uint32(stopWaitHint / time.Millisecond)}
		select {
		case err := <-done:
			return err
		case <-tick.C:
		}
	}
}

// IsWindowsService reports whether the process runs as a Windows service.
func IsWindowsService() (bool, error) {
	return svc.IsWindowsService()
}
