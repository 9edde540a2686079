package testutil // import "github.com/kestrelai/otelcol-kestrel/internal/testutil"

import (
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componentstatus"
)

// StatusHost is a component.Host that records the status events reported to it. Its
// GetExtensions returns Extensions.
type StatusHost struct {
	Extensions map[component.ID]component.Component

	mu     sync.Mutex
	events []*componentstatus.Event
}

var _ componentstatus.Reporter = (*StatusHost)(nil)

func (h *StatusHost) GetExtensions() map[component.ID]component.Component { return h.Extensions }

func (h *StatusHost) Report(ev *componentstatus.Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.events = append(h.events, ev)
}

// Last returns the latest event, or nil.
func (h *StatusHost) Last() *componentstatus.Event {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.events) == 0 {
		return nil
	}
	return h.events[len(h.events)-1]
}

// Statuses returns the status of every event, in the order reported.
func (h *StatusHost) Statuses() []componentstatus.Status {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]componentstatus.Status, len(h.events))
	for i, ev := range h.events {
		out[i] = ev.Status()
	}
	return out
}

// Mark returns a position in the event history for WaitReported.
func (h *StatusHost) Mark() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.events)
}

// WaitStatus waits until the latest event has status st and, when contains is given, an
// error that contains each of them; it returns that event.
func (h *StatusHost) WaitStatus(tb testing.TB, st componentstatus.Status, contains ...string) *componentstatus.Event {
	tb.Helper()
	var ev *componentstatus.Event
	require.Eventually(tb, func() bool {
		ev = h.Last()
		return ev != nil && matches(ev, st, contains)
	}, WaitFor, Tick, "status %v containing %q never reported; last: %v", st, contains, describe(h.Last()))
	return ev
}

// WaitReported waits until an event reported after mark has status st and an error that
// contains each of contains; unlike WaitStatus it also sees states that did not last.
func (h *StatusHost) WaitReported(tb testing.TB, mark int, st componentstatus.Status, contains ...string) {
	tb.Helper()
	require.Eventually(tb, func() bool {
		h.mu.Lock()
		defer h.mu.Unlock()
		for _, ev := range h.events[mark:] {
			if matches(ev, st, contains) {
				return true
			}
		}
		return false
	}, WaitFor, Tick, "status %v containing %q never reported", st, contains)
}

func matches(ev *componentstatus.Event, st componentstatus.Status, contains []string) bool {
	if ev.Status() != st {
		return false
	}
	for _, c := range contains {
		if ev.Err() == nil || !strings.Contains(ev.Err().Error(), c) {
			return false
		}
	}
	return true
}

func describe(ev *componentstatus.Event) string {
	if ev == nil {
		return "none"
	}
	if ev.Err() != nil {
		return ev.Status().String() + ": " + ev.Err().Error()
	}
	return ev.Status().String()
}
