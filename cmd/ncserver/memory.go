package main

import (
	"context"
	"log/slog"

	"github.com/netcluster/netcluster/internal/memret"
)

// startMemret returns the memory a burst leaves behind to the system
// instead of keeping it for minutes (see internal/memret) until stop is
// called.
func startMemret(log *slog.Logger) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		memret.Watch(ctx, memret.Options{OnReturn: func(before, after uint64) {
			log.Debug("returned memory after a burst", "heap_before", before, "heap_after", after)
		}})
	}()
	return func() { cancel(); <-done }
}
