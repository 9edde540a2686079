// Package outbuf is the bounded output buffer of the cloud's tools: it keeps at most its
// limit of what is written to it and counts the rest, so a tool's output never grows past
// what the response to the cloud can carry.
package outbuf // import "github.com/kestrelai/otelcol-kestrel/receiver/kestreltoolsreceiver/internal/outbuf"

import (
	"sync"
	"unsafe"
)

const (
	// minGrow is the first allocation. The buffer then doubles, up to its limit, so n bytes
	// of output cost about 2n of allocations and are never copied once they are whole.
	minGrow = 4 << 10
	// noteRoom is kept beyond the limit when the buffer grows to it, for the truncation note.
	noteRoom = 512
)

// Buffer keeps the first Limit bytes written to it. Writes never fail, so a writer (a
// printer in kubectl, say) is not interrupted mid-line by an error of ours; onFull tells the
// caller to stop producing. It is safe for concurrent writers.
type Buffer struct {
	mu     sync.Mutex
	buf    []byte
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
	if room := b.limit - len(b.buf); room > 0 {
		b.append(p[:min(room, len(p))])
	}
	if !wasFull && b.total > int64(b.limit) && b.onFull != nil {
		b.onFull()
	}
	return len(p), nil
}

// append grows the buffer by doubling, to at most the limit plus room for a note.
func (b *Buffer) append(p []byte) {
	if need := len(b.buf) + len(p); need > cap(b.buf) {
		nb := make([]byte, len(b.buf), min(max(2*cap(b.buf), need, minGrow), max(b.limit+noteRoom, need)))
		copy(nb, b.buf)
		b.buf = nb
	}
	b.buf = append(b.buf, p...)
}

// Note appends s after what was kept, beyond the limit: a truncation note, whose length
// the caller keeps free below its own cap. It does not count towards Total.
func (b *Buffer) Note(s string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.append([]byte(s))
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
	return len(b.buf)
}

// String returns what was kept (and the note), without copying it, as strings.Builder
// does: a response of several MiB is held once.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.buf) == 0 {
		return ""
	}
	// Bytes below len(b.buf) are never written again (writes and notes only append), so the
	// string cannot change; a writer that outlives its command appends past it.
	return unsafe.String(&b.buf[0], len(b.buf)) //nolint:gosec // G103: see above
}
