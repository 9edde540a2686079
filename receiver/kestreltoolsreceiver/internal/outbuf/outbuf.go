// Package outbuf is the bounded output buffer of the cloud's tools: it keeps at most its
// limit of what is written to it and counts the rest, so a tool's output never grows past
// what the response to the cloud can carry.
package outbuf // import "github.com/kestrelai/otelcol-kestrel/receiver/kestreltoolsreceiver/internal/outbuf"

import (
	"strings"
	"sync"
)

// Buffer keeps the first Limit bytes written to it. Writes never fail, so a writer (a
// printer in kubectl, say) is not interrupted mid-line by an error of ours; Full tells the
// caller to stop producing. It is safe for concurrent writers.
type Buffer struct {
	mu     sync.Mutex
	b      strings.Builder
	limit  int
	total  int64
	onFull func()
}

// New returns a buffer that keeps limit bytes and calls onFull (if not nil) once, when
// the first byte beyond the limit arrives.
func New(limit int, onFull func()) *Buffer {
	return &Buffer{limit: max(limit, 0), onFull: onFull}
}

func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	wasFull := b.total > int64(b.limit)
	b.total += int64(len(p))
	if room := b.limit - b.b.Len(); room > 0 {
		b.b.Write(p[:min(room, len(p))])
	}
	if !wasFull && b.total > int64(b.limit) && b.onFull != nil {
		b.onFull()
	}
	return len(p), nil
}

// Truncated says whether more was written than kept.
func (b *Buffer) Truncated() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.total > int64(b.limit)
}

// Total is the number of bytes written, kept or not.
func (b *Buffer) Total() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.total
}

// Len is the number of bytes kept.
func (b *Buffer) Len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Len()
}

// String returns what was kept, without copying it.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
