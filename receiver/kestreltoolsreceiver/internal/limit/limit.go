// Package limit is the one concurrency limit of the cloud's tools: at most Running calls
// run at once, at most Waiting more wait for a slot, each for at most Wait, and the rest are
// told at once that the collector is busy. Waiting requests hold only their (decoded)
// request, so memory stays bounded however many requests the cloud sends.
package limit // import "github.com/kestrelai/otelcol-kestrel/receiver/kestreltoolsreceiver/internal/limit"

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// ErrBusy is returned when no slot frees up in time; its message is what the cloud reads.
var ErrBusy = errors.New("busy")

// Limiter hands out run slots.
type Limiter struct {
	running chan struct{}
	waiting chan struct{}
	wait    time.Duration
}

// New returns a limiter for running concurrent calls and waiting queued ones.
func New(running, waiting int, wait time.Duration) *Limiter {
	return &Limiter{running: make(chan struct{}, running), waiting: make(chan struct{}, waiting), wait: wait}
}

// Acquire takes a slot, waiting at most the configured time (and never past ctx). The
// returned release must be called once the call is done.
func (l *Limiter) Acquire(ctx context.Context) (release func(), err error) {
	release = func() { <-l.running }
	select {
	case l.running <- struct{}{}:
		return release, nil
	default:
	}
	select {
	case l.waiting <- struct{}{}:
	default:
		return nil, fmt.Errorf("%w: %d tool requests are running and %d waiting; try again shortly", ErrBusy, cap(l.running), cap(l.waiting))
	}
	defer func() { <-l.waiting }()
	timer := time.NewTimer(l.wait)
	defer timer.Stop()
	select {
	case l.running <- struct{}{}:
		return release, nil
	case <-timer.C:
		return nil, fmt.Errorf("%w: no tool slot freed up within %v (%d running); try again shortly", ErrBusy, l.wait, cap(l.running))
	case <-ctx.Done():
		return nil, context.Cause(ctx)
	}
}
