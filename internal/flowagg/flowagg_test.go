package flowagg

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/receiver/receiverhelper"
	"go.opentelemetry.io/collector/receiver/receivertest"
	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/kestrelai/otelcol-kestrel/internal/schema"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// flushes records what a window emitted.
type flushes struct {
	mu      sync.Mutex
	windows []map[string]int
	dropped int64
}

func (f *flushes) flush(_ context.Context, m map[string]*int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make(map[string]int, len(m))
	for k, v := range m {
		out[k] = *v
	}
	f.windows = append(f.windows, out)
}

func (f *flushes) drop() { f.dropped++ }

func (f *flushes) get() []map[string]int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]map[string]int(nil), f.windows...)
}

func add(w *Window[string, int], key string) bool {
	return w.Update(key, func(v *int, fresh bool) {
		if fresh {
			*v = 100
		}
		*v++
	})
}

func TestWindowAggregatesUntilFlushed(t *testing.T) {
	f := &flushes{}
	w := New[string, int](Config{Window: time.Hour, MaxEntries: 10}, f.flush, f.drop)
	for _, k := range []string{"a", "b", "a", "a"} {
		require.True(t, add(w, k))
	}
	w.Flush(context.Background())
	add(w, "b")
	w.Flush(context.Background())
	w.Flush(context.Background()) // nothing left: no empty window is emitted
	assert.Equal(t, []map[string]int{{"a": 103, "b": 101}, {"b": 101}}, f.get())
}

func TestWindowFlushesOnItsTicker(t *testing.T) {
	f := &flushes{}
	w := New[string, int](Config{Window: 10 * time.Millisecond, MaxEntries: 10}, f.flush, f.drop)
	w.Start()
	add(w, "a")
	require.Eventually(t, func() bool { return len(f.get()) == 1 }, 5*time.Second, time.Millisecond)
	add(w, "b")
	w.Shutdown(context.Background())
	windows := f.get()
	assert.Equal(t, map[string]int{"a": 101}, windows[0])
	assert.Equal(t, map[string]int{"b": 101}, windows[len(windows)-1], "Shutdown flushes the rest")
}

// A window that reaches MaxEntries is handed over early; while that one still waits for the
// flusher, records with new keys are dropped and counted, and known keys keep counting.
func TestWindowOverflow(t *testing.T) {
	f := &flushes{}
	w := New[string, int](Config{Window: time.Hour, MaxEntries: 2}, f.flush, f.drop)
	require.True(t, add(w, "a"))
	require.True(t, add(w, "b"))
	require.True(t, add(w, "c"), "the full window is handed over")
	require.True(t, add(w, "d"))
	require.False(t, add(w, "e"), "both windows are full")
	require.True(t, add(w, "d"))
	assert.Equal(t, int64(1), f.dropped)
	w.Shutdown(context.Background())
	assert.Equal(t, []map[string]int{{"a": 101, "b": 101}, {"c": 101, "d": 102}}, f.get())
}

func TestEmitter(t *testing.T) {
	set := receivertest.NewNopSettings(component.MustNewType("flows"))
	obs, err := receiverhelper.NewObsReport(receiverhelper.ObsReportSettings{ReceiverID: set.ID, Transport: "grpc", ReceiverCreateSettings: set})
	require.NoError(t, err)
	core, logs := observer.New(zap.WarnLevel)
	sink := &consumertest.LogsSink{}
	s := Sink{Next: sink, Obs: obs, Logger: zap.New(core), Scope: "scope", Format: "format"}
	toRecord := func(k string, v *int, lr plog.LogRecord, observed pcommon.Timestamp) {
		lr.Body().SetStr(k)
		lr.SetSeverityNumber(plog.SeverityNumber(*v))
		lr.SetObservedTimestamp(observed)
	}
	before := time.Now()
	one, two := 1, 2
	Emitter(s, toRecord)(context.Background(), map[string]*int{"a": &one, "b": &two})
	require.Len(t, sink.AllLogs(), 1)
	sl := sink.AllLogs()[0].ResourceLogs().At(0).ScopeLogs().At(0)
	assert.Equal(t, "scope", sl.Scope().Name())
	got := map[string]int{}
	for i := range sl.LogRecords().Len() {
		lr := sl.LogRecords().At(i)
		got[lr.Body().Str()] = int(lr.SeverityNumber())
		assert.WithinRange(t, lr.ObservedTimestamp().AsTime(), before, time.Now())
	}
	assert.Equal(t, map[string]int{"a": 1, "b": 2}, got)
	assert.Zero(t, logs.Len())

	s.Next = consumertest.NewErr(consumererror.NewPermanent(errors.New("bad data")))
	Emitter(s, toRecord)(context.Background(), map[string]*int{"a": &one})
	require.Equal(t, 1, logs.Len(), "a refused window is logged")
	assert.Equal(t, int64(1), logs.All()[0].ContextMap()["records"])
}

// refusing refuses the first n offers with a retryable error, like a full exporter queue,
// then takes them.
type refusing struct {
	consumertest.LogsSink
	n, offers int
}

func (r *refusing) ConsumeLogs(ctx context.Context, ld plog.Logs) error {
	r.offers++
	if r.offers <= r.n {
		return errors.New("sending queue is full")
	}
	return r.LogsSink.ConsumeLogs(ctx, ld)
}

func TestEmitterWaitsForThePipeline(t *testing.T) {
	set := receivertest.NewNopSettings(component.MustNewType("flows"))
	obs, err := receiverhelper.NewObsReport(receiverhelper.ObsReportSettings{ReceiverID: set.ID, Transport: "grpc", ReceiverCreateSettings: set})
	require.NoError(t, err)
	core, logs := observer.New(zap.WarnLevel)
	next := &refusing{n: 4}
	s := Sink{Next: next, Obs: obs, Logger: zap.New(core), Scope: "scope", Format: "format"}
	toRecord := func(k string, _ *int, lr plog.LogRecord, _ pcommon.Timestamp) { lr.Body().SetStr(k) }
	aggs := map[string]*int{}
	for i := range EmitChunk + 1 {
		aggs[strconv.Itoa(i)] = new(int)
	}
	Emitter(s, toRecord)(context.Background(), aggs)
	assert.Equal(t, EmitChunk+1, next.LogRecordCount(), "every record, after the refusals")
	assert.Len(t, next.AllLogs(), 2)
	assert.Equal(t, 6, next.offers, "four refusals, then both chunks")
	assert.Zero(t, logs.Len(), "a refusal that was retried is not a loss")

	// Refused until the flush is cancelled (Shutdown's deadline): logged as lost.
	next = &refusing{n: 1 << 30}
	s.Next = next
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	Emitter(s, toRecord)(ctx, map[string]*int{"a": new(int)})
	assert.Greater(t, next.offers, 2, "offered again")
	require.Equal(t, 1, logs.Len())
	assert.Contains(t, logs.All()[0].ContextMap()["error"], "sending queue is full")
}

func TestEventTime(t *testing.T) {
	assert.Equal(t, int64(1_700_000_000_000_000_005), EventTime(&timestamppb.Timestamp{Seconds: 1_700_000_000, Nanos: 5}))
	before := time.Now().UnixNano()
	assert.GreaterOrEqual(t, EventTime(nil), before, "no time is now")
}

func TestSpan(t *testing.T) {
	var s Span
	for _, ts := range []int64{20, 10, 30} {
		s.Add(ts * int64(time.Second))
	}
	assert.Equal(t, Span{Count: 3, First: 10 * int64(time.Second), Last: 30 * int64(time.Second)}, s)
	lr := plog.NewLogRecord()
	s.Put(lr)
	assert.Equal(t, time.Unix(10, 0).UTC(), lr.Timestamp().AsTime())
	assert.Equal(t, map[string]any{
		schema.AttrAggregateCount:    int64(3),
		schema.AttrAggregateLastSeen: "1970-01-01T00:00:30Z",
	}, lr.Attributes().AsRaw())

	neg := Span{Count: 1, First: -5, Last: -5}
	neg.Put(lr)
	assert.Zero(t, lr.Timestamp(), "times before 1970 are clamped")
}

func TestConfig(t *testing.T) {
	cfg := NewDefaultConfig()
	require.NoError(t, cfg.Check("aggregation"))
	assert.Equal(t, 30*time.Second, cfg.Window)
	cfg.Window = time.Millisecond
	cfg.MaxEntries = 0
	err := cfg.Check("aggregation")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "aggregation::window")
	assert.Contains(t, err.Error(), "aggregation::max_entries")
}

// A flush the flusher is running when Shutdown is called finishes with a live context: the
// pipeline may still be sending that window. Only Shutdown's own ctx ending cancels it.
func TestWindowShutdownLetsTheFlushFinish(t *testing.T) {
	for _, tc := range []struct {
		name     string
		shutdown func() context.Context
		want     error
	}{
		{"finishes", context.Background, nil},
		{"shutdown ctx ends", func() context.Context {
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			return ctx
		}, context.Canceled},
	} {
		t.Run(tc.name, func(t *testing.T) {
			started, release := make(chan struct{}), make(chan struct{})
			var errs []error
			flush := func(ctx context.Context, m map[string]*int) {
				if m["a"] != nil {
					close(started)
					select {
					case <-ctx.Done():
					case <-release:
					}
				}
				errs = append(errs, ctx.Err())
			}
			w := New[string, int](Config{Window: 10 * time.Millisecond, MaxEntries: 10}, flush, func() {})
			w.Start()
			add(w, "a")
			<-started
			add(w, "b")
			shut := make(chan struct{})
			go func() {
				defer close(shut)
				w.Shutdown(tc.shutdown())
			}()
			if tc.want == nil {
				require.Never(t, func() bool {
					select {
					case <-shut:
						return true
					default:
						return false
					}
				}, 50*time.Millisecond, time.Millisecond, "Shutdown waits for the flush")
				close(release)
			}
			<-shut
			// The window flushed by Shutdown itself gets Shutdown's ctx.
			assert.Equal(t, []error{tc.want, tc.want}, errs)
		})
	}
}

// timedSink records when each chunk arrives.
type timedSink struct {
	consumertest.LogsSink
	mu sync.Mutex
	at []time.Time
}

func (s *timedSink) ConsumeLogs(ctx context.Context, ld plog.Logs) error {
	s.mu.Lock()
	s.at = append(s.at, time.Now())
	s.mu.Unlock()
	return s.LogsSink.ConsumeLogs(ctx, ld)
}

func (s *timedSink) times() []time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Time(nil), s.at...)
}

// spreadWindow starts a window of interval emitting into a timedSink, with three chunks'
// worth of keys in it.
func spreadWindow(t *testing.T, interval time.Duration, maxEntries int) (*Window[string, int], *timedSink) {
	t.Helper()
	set := receivertest.NewNopSettings(component.MustNewType("flows"))
	obs, err := receiverhelper.NewObsReport(receiverhelper.ObsReportSettings{ReceiverID: set.ID, Transport: "grpc", ReceiverCreateSettings: set})
	require.NoError(t, err)
	sink := &timedSink{}
	s := Sink{Next: sink, Obs: obs, Logger: zap.NewNop(), Scope: "scope", Format: "format"}
	toRecord := func(k string, _ *int, lr plog.LogRecord, _ pcommon.Timestamp) { lr.Body().SetStr(k) }
	w := New[string, int](Config{Window: interval, MaxEntries: maxEntries}, Emitter(s, toRecord), func() {})
	for i := range 3 * EmitChunk {
		require.True(t, add(w, strconv.Itoa(i)))
	}
	w.Start()
	return w, sink
}

// A window that ends on its ticker goes out over half its interval, not at once.
func TestEmitterSpreadsATickedWindow(t *testing.T) {
	w, sink := spreadWindow(t, 600*time.Millisecond, 100_000)
	require.Eventually(t, func() bool { return len(sink.times()) == 3 }, 5*time.Second, time.Millisecond)
	w.Shutdown(context.Background())
	at := sink.times()
	// 300 ms over three chunks: 100 ms between them.
	assert.GreaterOrEqual(t, at[1].Sub(at[0]), 90*time.Millisecond)
	assert.GreaterOrEqual(t, at[2].Sub(at[1]), 90*time.Millisecond)
	assert.Equal(t, 3*EmitChunk, sink.LogRecordCount())
}

// Shutdown does not wait for the spread: the rest of the window goes at once.
func TestEmitterSpreadEndsAtShutdown(t *testing.T) {
	w, sink := spreadWindow(t, 3*time.Second, 100_000)
	require.Eventually(t, func() bool { return len(sink.times()) == 1 }, 10*time.Second, time.Millisecond)
	start := time.Now()
	w.Shutdown(context.Background())
	assert.Less(t, time.Since(start), 300*time.Millisecond, "the pauses are 500 ms each")
	assert.Equal(t, 3*EmitChunk, sink.LogRecordCount())
}

// A window that fills up while the previous one is being spread ends the pauses, so the
// flusher is free for it before a third window has to drop records.
func TestEmitterSpreadEndsWhenAWindowFillsUp(t *testing.T) {
	w, sink := spreadWindow(t, 3*time.Second, 3*EmitChunk)
	require.Eventually(t, func() bool { return len(sink.times()) == 1 }, 10*time.Second, time.Millisecond)
	for i := range 3*EmitChunk + 1 {
		require.True(t, add(w, "next"+strconv.Itoa(i)))
	}
	require.Eventually(t, func() bool { return sink.LogRecordCount() == 6*EmitChunk }, 300*time.Millisecond, time.Millisecond,
		"the spread window and the one that filled up, without the two 500 ms pauses left")
	w.Shutdown(context.Background())
	assert.Equal(t, 6*EmitChunk+1, sink.LogRecordCount())
}
