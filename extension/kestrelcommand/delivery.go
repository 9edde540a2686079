package kestrelcommand // import "github.com/kestrelai/otelcol-kestrel/extension/kestrelcommand"

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/kestrelai/otelcol-kestrel/internal/cloudconn"
	"github.com/kestrelai/otelcol-kestrel/internal/envelope"
)

// Acknowledged delivery (docs/protocol.md#acknowledged-delivery). Every message is numbered
// per stream kind within a delivery session, which is this process: a random id sent as
// stream metadata. A server that knows the numbers acknowledges the highest it has recorded
// and drops numbers it has seen. A SendAcknowledged caller waits for the acknowledgement of
// its message; when the stream breaks first, the message is written again with the same
// number on the next stream of that kind, so a server that had recorded it filters the copy.
//
// Why the numbers need not survive a restart: what a restarted collector re-sends comes from
// the exporter's persistent queue as new messages with new numbers, under a new session id
// (so they can never be mistaken for the old process's numbers). Those duplicates, at most
// the batches in flight at the crash, are not filtered.

// ackMode is what a stream instance is known to do with numbers.
type ackMode int

const (
	ackUnknown ackMode = iota // no acknowledgement yet and the quiet period not over
	ackYes                    // the server acknowledges: senders wait for it
	ackNo                     // no acknowledgement within the quiet period: an older server
)

// Quiet periods after a stream's first write after which a server that sent no
// acknowledgement counts as one that never does. Longer once this process has seen
// acknowledgements: a busy acknowledging server is more likely than a downgraded one.
const (
	ackQuiet      = time.Second
	ackQuietKnown = 10 * time.Second
)

// errUnacknowledged fails a wait whose stream ended before the server was known to
// acknowledge: the message may or may not have arrived, so its sender retries.
var errUnacknowledged = fmt.Errorf("%w: stream ended before the message was acknowledged", cloudconn.ErrNotConnected)

// newSessionID returns a delivery session id, unique per process start.
func newSessionID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on supported platforms
	return hex.EncodeToString(b)
}

// outbox is one stream kind's sequence space, shared by the successive streams of that kind.
type outbox struct {
	mu      sync.Mutex
	next    uint64     // last sequence assigned
	acked   uint64     // highest acknowledgement received
	waiting []*receipt // numbered messages whose senders wait, in sequence order
}

// receipt is one numbered message a sender waits on.
type receipt struct {
	ob   *outbox
	seq  uint64
	env  proto.Message // the numbered envelope, written again after a reconnect
	done chan struct{}
	err  error // set before done is closed
	// Guarded by ob.mu: the stream it was last written on, and whether that was a rewrite
	// (which, unlike a first write on a side stream, the stream's replay buffer does not hold).
	st        *stream
	rewritten bool
}

// number assigns the next sequence to env; called with the stream's write lock held, so
// that a stream's numbers increase in the order its messages are written.
func (o *outbox) number(env proto.Message) uint64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.next++
	envelope.SetSequence(env, o.next)
	return o.next
}

// track registers a written message for waiting; nil when there is nothing to wait for.
func (o *outbox) track(st *stream, seq uint64, env proto.Message) *receipt {
	o.mu.Lock()
	defer o.mu.Unlock()
	if seq <= o.acked || st.ackMode() == ackNo {
		return nil
	}
	r := &receipt{ob: o, seq: seq, env: env, st: st, done: make(chan struct{})}
	o.waiting = append(o.waiting, r)
	return r
}

// acknowledge completes the waits up to seq.
func (o *outbox) acknowledge(seq uint64) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.acked = max(o.acked, seq)
	n := 0
	for n < len(o.waiting) && o.waiting[n].seq <= seq {
		o.waiting[n].finish(nil)
		n++
	}
	o.waiting = o.waiting[n:]
}

// release completes the waits of messages last written on st with err (nil: st's server
// does not acknowledge, so written counts as sent, as before acknowledgements existed).
// With keepRewritten, messages rewritten on st stay waiting for the next stream.
func (o *outbox) release(st *stream, err error, keepRewritten bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	kept := o.waiting[:0]
	for _, r := range o.waiting {
		if r.st == st && (!keepRewritten || !r.rewritten) {
			r.finish(err)
			continue
		}
		kept = append(kept, r)
	}
	clear(o.waiting[len(kept):])
	o.waiting = kept
}

// forget drops r: its sender stopped waiting and will send the records again itself.
func (o *outbox) forget(r *receipt) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for i, w := range o.waiting {
		if w == r {
			o.waiting = append(o.waiting[:i:i], o.waiting[i+1:]...)
			return
		}
	}
}

// pending returns the messages still waiting, for writing them again on a new stream.
func (o *outbox) pending() []*receipt {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]*receipt(nil), o.waiting...)
}

// moved records that r was written again on st.
func (o *outbox) moved(r *receipt, st *stream) {
	o.mu.Lock()
	defer o.mu.Unlock()
	r.st, r.rewritten = st, true
}

func (r *receipt) finish(err error) {
	r.err = err
	close(r.done)
}

// wait returns once the message is acknowledged, or fails when ctx ends first or the
// message cannot be acknowledged any more; every error is retryable.
func (r *receipt) wait(ctx context.Context) error {
	select {
	case <-r.done:
		return r.err
	case <-ctx.Done():
		r.ob.forget(r)
		select {
		case <-r.done: // acknowledged meanwhile
			return r.err
		default:
		}
		return fmt.Errorf("waiting for Kestrel Cloud to acknowledge message %d: %w", r.seq, ctx.Err())
	}
}

// Stream-side state of acknowledged delivery.

func (st *stream) ackMode() ackMode {
	st.modeMu.Lock()
	defer st.modeMu.Unlock()
	return st.mode
}

// setAckMode decides the stream's mode; ackNo releases its waiting senders. It is decided
// once, except that an acknowledgement arriving after the quiet period still turns the
// stream into an acknowledging one (a slow server, not an old one).
func (st *stream) setAckMode(m ackMode) {
	st.modeMu.Lock()
	if st.mode == m || (st.mode != ackUnknown && m != ackYes) {
		st.modeMu.Unlock()
		return
	}
	st.mode = m
	st.modeMu.Unlock()
	if m == ackNo {
		st.outbox.release(st, nil, false)
	}
}

// wrote starts, at the stream's first write, the quiet period after which a server that
// has not acknowledged anything counts as one that never does.
func (st *stream) wrote(quiet time.Duration) {
	st.quietOnce.Do(func() {
		t := time.AfterFunc(quiet, func() { st.setAckMode(ackNo) })
		context.AfterFunc(st.cs.Context(), func() { t.Stop() })
	})
}

// acknowledged handles an acknowledgement received on st.
func (st *stream) acknowledged(seq uint64) {
	st.setAckMode(ackYes)
	st.outbox.acknowledge(seq)
}

// ended settles the waits of messages last written on st once its receive loop returned.
// With an acknowledging server they stay, to be written again on the next stream of the
// kind. Otherwise a refused stream's payloads are re-sent by the replay buffer (so they
// count as sent) except the rewritten ones, which it does not hold and which therefore wait
// for the next stream; and a stream that ended before its server's mode was known fails them.
func (st *stream) ended(refused bool) {
	switch mode := st.ackMode(); {
	case mode == ackYes:
	case mode == ackNo:
		st.outbox.release(st, nil, false)
	case refused:
		st.outbox.release(st, nil, true)
	default:
		st.outbox.release(st, errUnacknowledged, false)
	}
}

// rewrite writes the messages still waiting for an acknowledgement on st, a new stream of
// their kind, with their numbers, before anything else is written on it.
func (st *stream) rewrite(ctx context.Context) error {
	for _, r := range st.outbox.pending() {
		if err := st.write(ctx, r.env); err != nil {
			return err
		}
		st.outbox.moved(r, st)
	}
	return nil
}
