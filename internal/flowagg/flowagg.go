// Package flowagg aggregates high-rate network records (Hubble flows, Envoy access-log entries)
// by key over a time window, for the receivers that turn them into log records. Producers only
// ever take a short lock: converting and consuming the aggregates happens on the window's own
// goroutine, so a slow pipeline never pushes back on Hubble Relay or Envoy. A window is sent
// only as fast as the pipeline takes it (Emitter). When the pipeline falls so far behind that
// a full window is still waiting while the next one fills up, records with new keys are
// dropped and counted instead.
package flowagg // import "github.com/kestrelai/otelcol-kestrel/internal/flowagg"

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/receiver/receiverhelper"
	"go.uber.org/zap"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/kestrelai/otelcol-kestrel/internal/schema"
)

// Config configures the aggregation window; receivers embed it as "aggregation".
type Config struct {
	// Window is how long records are aggregated before the aggregates are emitted. Kestrel
	// Cloud expects 30 s.
	Window time.Duration `mapstructure:"window"`
	// MaxEntries bounds the distinct keys of one window (memory). A window that reaches it is
	// emitted early.
	MaxEntries int `mapstructure:"max_entries"`

	// prevent unkeyed literal initialization
	_ struct{}
}

// NewDefaultConfig returns a 30 s window of at most 100,000 keys.
func NewDefaultConfig() Config {
	return Config{Window: 30 * time.Second, MaxEntries: 100_000}
}

// Check validates the window and the key bound, naming them under key, the receiver's
// name for this section (e.g. aggregation::window). It is not a confmap.Validator, which
// would report them relative to the section: receivers call it from their Validate.
func (c *Config) Check(key string) error {
	var errs []error
	if c.Window < 10*time.Millisecond {
		errs = append(errs, fmt.Errorf("%s::window must be at least 10ms, got %v", key, c.Window))
	}
	if c.MaxEntries <= 0 {
		errs = append(errs, fmt.Errorf("%s::max_entries must be positive, got %d", key, c.MaxEntries))
	}
	return errors.Join(errs...)
}

// FlushFunc receives one window's aggregates. It runs on the window's goroutine (or in
// Shutdown), one call at a time, and owns the map.
type FlushFunc[K comparable, V any] func(ctx context.Context, aggregates map[K]*V)

// Sink is where a receiver sends its windows.
type Sink struct {
	Next   consumer.Logs
	Obs    *receiverhelper.ObsReport
	Logger *zap.Logger
	// Scope is the instrumentation scope of the records; Format is the data format obsreport
	// reports.
	Scope, Format string
}

// EmitChunk is how many aggregates go to the pipeline in one plog.Logs. A window of 100,000
// keys as one plog.Logs would hold all of its log records, and the messages the exporter
// maps them to, in memory at once.
const EmitChunk = 1024

// Emitter returns a FlushFunc that writes each aggregate as one log record with toRecord and
// sends the window to s.Next in plog.Logs of at most EmitChunk records. Each aggregate is
// removed from the window's map once it is written, so its memory can go while the rest are.
//
// A chunk the pipeline refuses with an error that is not permanent (the exporter's queue is
// full, a memory limiter refuses) is offered again after a pause, until it is taken or ctx
// ends: the window is emitted only as fast as the pipeline takes it, so a bounded queue
// bounds the records in memory, and a slow or unreachable cloud holds records back instead
// of losing them. Meanwhile the next window fills, and records with new keys are dropped
// (counted) only once it is full too.
//
// A window that ends on its ticker is spread over half its interval, one chunk after the
// other (see spread): an asynchronous exporter queue takes a whole window at once, and its
// records would otherwise all exist as pdata, and then as the messages they are mapped to,
// at the same time; an aggregate waiting in the map is several times smaller than its record.
func Emitter[K comparable, V any](s Sink, toRecord func(k K, v *V, lr plog.LogRecord, observed pcommon.Timestamp)) FlushFunc[K, V] {
	return func(ctx context.Context, aggs map[K]*V) {
		observed := pcommon.NewTimestampFromTime(time.Now())
		sp, _ := ctx.Value(spreadKey{}).(*spread)
		var pause time.Duration
		if chunks := (len(aggs) + EmitChunk - 1) / EmitChunk; sp != nil && chunks > 1 {
			pause = sp.over / time.Duration(chunks)
		}
		for first := true; len(aggs) > 0; first = false {
			if !first && pause > 0 && !sp.wait(pause) {
				pause = 0
			}
			n := min(len(aggs), EmitChunk)
			ld := plog.NewLogs()
			sl := ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty()
			sl.Scope().SetName(s.Scope)
			lrs := sl.LogRecords()
			lrs.EnsureCapacity(n)
			for k, v := range aggs {
				if lrs.Len() == n {
					break
				}
				toRecord(k, v, lrs.AppendEmpty(), observed)
				delete(aggs, k)
			}
			opCtx := s.Obs.StartLogsOp(ctx)
			err := consume(opCtx, s.Next, ld)
			s.Obs.EndLogsOp(opCtx, s.Format, n, err)
			if err != nil {
				s.Logger.Warn("Aggregated records were refused by the pipeline", zap.Int("records", n), zap.Error(err))
			}
		}
	}
}

// spreadKey is the context key of a flush's *spread.
type spreadKey struct{}

// spread is how a window that ended on its ticker is handed over: its chunks evenly over
// the duration over, unless stop or full end the pauses.
type spread struct {
	over time.Duration
	// stop closes when the window shuts down; full reports that a window that filled up
	// early is waiting, and filled wakes a pause when one is handed over. Either ends the
	// pauses, and the rest goes at once.
	stop   <-chan struct{}
	filled <-chan struct{}
	full   func() bool
}

// wait pauses for d and reports whether the emitter may keep pausing.
func (sp *spread) wait(d time.Duration) bool {
	if sp.full() {
		return false
	}
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		select {
		case <-sp.stop:
			return false
		case <-sp.filled:
			if sp.full() {
				return false
			}
		case <-t.C:
			return !sp.full()
		}
	}
}

// Pauses between offers of a refused chunk: short at first, as an exporter's queue frees a
// place with every request it sends, then longer while the pipeline stays refusing.
const (
	retryFirst = 5 * time.Millisecond
	retryMax   = time.Second
)

// consume hands ld to next, offering it again while next refuses it with an error that is
// not permanent, until ctx ends.
func consume(ctx context.Context, next consumer.Logs, ld plog.Logs) error {
	pause := retryFirst
	for {
		err := next.ConsumeLogs(ctx, ld)
		if err == nil || consumererror.IsPermanent(err) {
			return err
		}
		t := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			t.Stop()
			return errors.Join(err, ctx.Err())
		case <-t.C:
		}
		pause = min(2*pause, retryMax)
	}
}

// Window aggregates values of type V by key K.
type Window[K comparable, V any] struct {
	interval time.Duration
	max      int
	flush    FlushFunc[K, V]
	dropped  func()

	mu  sync.Mutex
	cur map[K]*V
	// full holds a window that reached max before its time, until the flusher takes it;
	// filled wakes a flusher that is spreading the previous window (see spread).
	full   chan map[K]*V
	filled chan struct{}

	stop   func()             // ends the flusher's loop; once, as Shutdown may be called again
	cancel context.CancelFunc // cancels the flusher's flushes
	done   chan struct{}
}

// New returns a window that is not running yet. dropped is called (under the window's lock,
// so it must be quick) for each record that could not be aggregated.
func New[K comparable, V any](cfg Config, flush FlushFunc[K, V], dropped func()) *Window[K, V] {
	return &Window[K, V]{
		interval: cfg.Window,
		max:      cfg.MaxEntries,
		flush:    flush,
		dropped:  dropped,
		cur:      make(map[K]*V),
		full:     make(chan map[K]*V, 1),
		filled:   make(chan struct{}, 1),
	}
}

// Update calls fn with the aggregate of key, creating it (zero V, fresh true) if needed,
// under the window's lock. It returns false, without calling fn, when the record was dropped.
func (w *Window[K, V]) Update(key K, fn func(v *V, fresh bool)) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if v, ok := w.cur[key]; ok {
		fn(v, false)
		return true
	}
	if n := len(w.cur); n >= w.max {
		select {
		case w.full <- w.cur:
			// The map now belongs to the flusher, which empties it as it emits: size the new
			// one from n, read before the hand-over.
			w.cur = make(map[K]*V, n)
			select {
			case w.filled <- struct{}{}:
			default:
			}
		default:
			w.dropped()
			return false
		}
	}
	v := new(V)
	w.cur[key] = v
	fn(v, true)
	return true
}

// Start runs the flusher until Shutdown. Stopping it does not cancel the context its
// FlushFunc calls get: that happens only when Shutdown's ctx ends before the flush does.
func (w *Window[K, V]) Start() {
	stop := make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background()) //nolint:gosec // kept in w.cancel, which Shutdown calls
	w.stop = sync.OnceFunc(func() { close(stop) })
	w.cancel = cancel
	w.done = make(chan struct{})
	go w.run(ctx, stop)
}

func (w *Window[K, V]) run(ctx context.Context, stop <-chan struct{}) {
	defer close(w.done)
	t := time.NewTicker(w.interval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case m := <-w.full:
			w.flush(ctx, m)
		case <-t.C:
			w.flushFull(ctx)
			if m := w.swap(); len(m) > 0 {
				sp := &spread{over: w.interval / 2, stop: stop, filled: w.filled, full: func() bool { return len(w.full) > 0 }}
				w.flush(context.WithValue(ctx, spreadKey{}, sp), m)
			}
		}
	}
}

func (w *Window[K, V]) swap() map[K]*V {
	w.mu.Lock()
	defer w.mu.Unlock()
	m := w.cur
	w.cur = make(map[K]*V, len(m))
	return m
}

// Flush emits the current window now, on the caller's goroutine; a window that filled up
// early goes first, so aggregates leave in order. Only one Flush may run at a time; the
// flusher started by Start does the same on every tick, with the current window spread
// (Emitter). Flush itself does not spread: Shutdown and tests want the window out now.
func (w *Window[K, V]) Flush(ctx context.Context) {
	w.flushFull(ctx)
	if m := w.swap(); len(m) > 0 {
		w.flush(ctx, m)
	}
}

// flushFull emits a window that filled up early, if one waits.
func (w *Window[K, V]) flushFull(ctx context.Context) {
	select {
	case m := <-w.full:
		w.flush(ctx, m)
	default:
	}
}

// Shutdown stops the flusher, waiting for a flush it is running, and flushes what is left
// with ctx, so a clean shutdown loses nothing. It is safe to call without Start.
func (w *Window[K, V]) Shutdown(ctx context.Context) {
	if w.stop != nil {
		w.stop()
		// The window being flushed is not abandoned, unless ctx ends first.
		release := context.AfterFunc(ctx, w.cancel)
		<-w.done
		release()
		w.cancel()
	}
	w.Flush(ctx)
}

// EventTime converts a record's timestamp to Unix nanoseconds; a record without one happened
// now.
func EventTime(t *timestamppb.Timestamp) int64 {
	if t == nil {
		return time.Now().UnixNano()
	}
	return t.Seconds*1e9 + int64(t.Nanos)
}

// Span is the count and event-time range (Unix nanoseconds) of one aggregate.
type Span struct {
	Count       int64
	First, Last int64
}

// Add counts one record that happened at t (Unix nanoseconds).
func (s *Span) Add(t int64) {
	if s.Count == 0 || t < s.First {
		s.First = t
	}
	if s.Count == 0 || t > s.Last {
		s.Last = t
	}
	s.Count++
}

// Put writes the span to a log record: Timestamp is the first event time, and the
// aggregate attributes of internal/schema carry the count and the last event time.
func (s *Span) Put(lr plog.LogRecord) {
	lr.SetTimestamp(pcommon.Timestamp(max(s.First, 0)))
	attrs := lr.Attributes()
	attrs.PutInt(schema.AttrAggregateCount, s.Count)
	attrs.PutStr(schema.AttrAggregateLastSeen, time.Unix(0, s.Last).UTC().Format(time.RFC3339Nano))
}
