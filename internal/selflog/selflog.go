// Package selflog carries the collector's own warning and error log entries from the
// service's logger to the kestrel_command extension, which sends them to Kestrel Cloud as
// PodLogs of the collector's pod.
//
// The telemetry factory (telemetry/kestreltelemetry) wraps the service logger's core with
// Core, which writes into a Buffer registered under the service's service.instance.id;
// the extension finds that Buffer with Lookup on its own TelemetrySettings.Resource. So
// no component imports another, and two collectors in one process (tests) stay apart.
//
// A log storm cannot flood the connection: a token bucket admits entries, the Buffer
// holds a bounded number of them, and everything refused by either is counted.
package selflog // import "github.com/kestrelai/otelcol-kestrel/internal/selflog"

import (
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.uber.org/zap/zapcore"
	"golang.org/x/time/rate"
)

// Defaults until the extension configures the Buffer (and its configuration's defaults).
const (
	DefaultRate     = 10  // entries per second, sustained
	DefaultBurst    = 100 // entries at once
	DefaultCapacity = 1000
	// MaxMessageBytes bounds one entry's message (with its fields); longer ones are cut.
	MaxMessageBytes = 4 << 10
)

// Entry is one captured log entry.
type Entry struct {
	Time    time.Time
	Level   zapcore.Level
	Message string // the message with the logger name and fields, as one line
	Error   string // the "error" field, if any
	Stack   string
}

// Buffer holds captured entries until the extension sends them. It is safe for
// concurrent use; Peek and Discard assume one consumer.
type Buffer struct {
	limiter *rate.Limiter

	mu       sync.Mutex
	entries  []Entry
	capacity int

	// dropped counts entries refused by the limiter or a full buffer.
	dropped atomic.Int64
	// ready is signalled (without blocking) when an entry is added.
	ready chan struct{}
	// claimed: a consumer has taken the buffer (there is one per service).
	claimed atomic.Bool
}

// NewBuffer returns a Buffer with the default limits.
func NewBuffer() *Buffer {
	return &Buffer{
		limiter:  rate.NewLimiter(DefaultRate, DefaultBurst),
		capacity: DefaultCapacity,
		ready:    make(chan struct{}, 1),
	}
}

// Claim makes the caller the buffer's one consumer; it reports false if another took it
// (a second kestrel_command in the same configuration).
func (b *Buffer) Claim() bool { return b.claimed.CompareAndSwap(false, true) }

// SetLimits changes the sustained rate (entries per second), the burst and the capacity.
func (b *Buffer) SetLimits(perSecond float64, burst, capacity int) {
	b.limiter.SetLimit(rate.Limit(perSecond))
	b.limiter.SetBurst(burst)
	b.mu.Lock()
	b.capacity = capacity
	b.mu.Unlock()
}

// admit reports whether the limiter lets one more entry through, counting it otherwise.
// It runs before the entry is encoded, so a storm costs little.
func (b *Buffer) admit() bool {
	if b.limiter.Allow() {
		return true
	}
	b.dropped.Add(1)
	return false
}

func (b *Buffer) add(e Entry) {
	b.mu.Lock()
	if len(b.entries) >= b.capacity {
		b.mu.Unlock()
		b.dropped.Add(1)
		return
	}
	b.entries = append(b.entries, e)
	b.mu.Unlock()
	select {
	case b.ready <- struct{}{}:
	default:
	}
}

// Ready is signalled when entries were added since the last receive.
func (b *Buffer) Ready() <-chan struct{} { return b.ready }

// Len returns the number of entries held.
func (b *Buffer) Len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.entries)
}

// Peek returns up to n of the oldest entries without removing them.
func (b *Buffer) Peek(n int) []Entry {
	b.mu.Lock()
	defer b.mu.Unlock()
	n = min(n, len(b.entries))
	out := make([]Entry, n)
	copy(out, b.entries[:n])
	return out
}

// Discard removes the n oldest entries (those Peek returned and the caller has sent).
func (b *Buffer) Discard(n int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	n = min(n, len(b.entries))
	b.entries = append(b.entries[:0], b.entries[n:]...)
}

// Dropped returns how many entries were refused since the Buffer was made.
func (b *Buffer) Dropped() int64 { return b.dropped.Load() }

var (
	registryMu sync.Mutex
	registry   = map[string]*Buffer{}
)

// InstanceID is the key of a service's Buffer: its service.instance.id resource attribute.
func InstanceID(res pcommon.Resource) string {
	v, ok := res.Attributes().Get("service.instance.id")
	if !ok {
		return ""
	}
	return v.AsString()
}

// Register makes b the Buffer of the service with the given resource until unregister is
// called (the logger's shutdown).
func Register(res pcommon.Resource, b *Buffer) (unregister func()) {
	id := InstanceID(res)
	registryMu.Lock()
	registry[id] = b
	registryMu.Unlock()
	return func() {
		registryMu.Lock()
		defer registryMu.Unlock()
		if registry[id] == b {
			delete(registry, id)
		}
	}
}

// Lookup returns the Buffer of the service with the given resource, or nil when its
// logger does not capture (a distribution built with another telemetry factory).
func Lookup(res pcommon.Resource) *Buffer {
	registryMu.Lock()
	defer registryMu.Unlock()
	return registry[InstanceID(res)]
}
