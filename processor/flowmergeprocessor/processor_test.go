package flowmergeprocessor

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/collector/processor/processortest"

	"github.com/kestrelai/otelcol-kestrel/internal/flowgraph"
	"github.com/kestrelai/otelcol-kestrel/internal/schema"
	"github.com/kestrelai/otelcol-kestrel/processor/flowmergeprocessor/internal/metadata"
)

const scope = "github.com/kestrelai/otelcol-kestrel/receiver/hubblereceiver"

var base = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// flow is one aggregate as a node's hubble receiver writes it.
type flow struct {
	src, dst    string // workload names in shop; "" with srcIP: an endpoint outside the cluster
	srcIP       string
	port        int64
	count       int64
	first, last time.Duration // after base
	labels      []string      // source labels
}

func (f flow) appendTo(lrs plog.LogRecordSlice) {
	lr := lrs.AppendEmpty()
	lr.SetEventName(schema.EventNetworkFlow)
	lr.SetSeverityNumber(plog.SeverityNumberInfo)
	lr.SetTimestamp(pcommon.NewTimestampFromTime(base.Add(f.first)))
	a := lr.Attributes()
	a.PutInt(schema.AttrAggregateCount, f.count)
	a.PutStr(schema.AttrAggregateLastSeen, base.Add(f.last).Format(time.RFC3339Nano))
	a.PutStr(schema.AttrNetworkTransport, schema.TransportTCP)
	a.PutInt(schema.AttrDestinationPort, f.port)
	a.PutStr(schema.AttrCiliumVerdict, "FORWARDED")
	a.PutStr(schema.AttrCiliumTrafficDirection, "EGRESS")
	a.PutStr(schema.AttrSourceAddress, f.srcIP)
	if f.src != "" {
		a.PutStr(schema.AttrSourceNamespace, "shop")
		a.PutStr(schema.AttrSourceWorkloadKind, "Deployment")
		a.PutStr(schema.AttrSourceWorkloadName, f.src)
	} else {
		a.PutInt(schema.AttrCiliumSourceIdentity, 2)
	}
	a.PutStr(schema.AttrDestNamespace, "shop")
	a.PutStr(schema.AttrDestWorkloadKind, "Deployment")
	a.PutStr(schema.AttrDestWorkloadName, f.dst)
	if len(f.labels) > 0 {
		s := a.PutEmptySlice(schema.AttrCiliumSourceLabels)
		for _, l := range f.labels {
			s.AppendEmpty().SetStr(l)
		}
	}
}

func logsOf(flows ...flow) plog.Logs {
	ld := plog.NewLogs()
	sl := ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty()
	sl.Scope().SetName(scope)
	for _, f := range flows {
		f.appendTo(sl.LogRecords())
	}
	return ld
}

func newTestProcessor(t *testing.T, window time.Duration, maxEntries int, next *consumertest.LogsSink) processor.Logs {
	t.Helper()
	cfg := createDefaultConfig().(*Config)
	cfg.Window, cfg.MaxEntries = window, maxEntries
	p, err := NewFactory().CreateLogs(context.Background(), processortest.NewNopSettings(metadata.Type), cfg, next)
	require.NoError(t, err)
	require.NoError(t, p.Start(context.Background(), componenttest.NewNopHost()))
	return p
}

// merged is what the sink received, per destination workload (the tests' key).
type merged struct {
	count       int64
	first, last time.Time
	srcIP       string
	labels      []any
}

func collect(t *testing.T, sink *consumertest.LogsSink) map[string]merged {
	t.Helper()
	out := map[string]merged{}
	for _, ld := range sink.AllLogs() {
		for i := range ld.ResourceLogs().Len() {
			sls := ld.ResourceLogs().At(i).ScopeLogs()
			for j := range sls.Len() {
				require.Equal(t, scope, sls.At(j).Scope().Name())
				lrs := sls.At(j).LogRecords()
				for k := range lrs.Len() {
					lr := lrs.At(k)
					a := lr.Attributes()
					key := fmt.Sprint(a.AsRaw()[schema.AttrSourceWorkloadName], "/", a.AsRaw()[schema.AttrSourceAddress], "->", a.AsRaw()[schema.AttrDestWorkloadName])
					if lr.EventName() != schema.EventNetworkFlow {
						key = "other:" + lr.Body().Str()
					}
					_, dup := out[key]
					require.False(t, dup, "key %s emitted twice", key)
					m := merged{first: lr.Timestamp().AsTime(), srcIP: a.AsRaw()[schema.AttrSourceAddress].(string)}
					if v, ok := a.Get(schema.AttrAggregateCount); ok {
						m.count = v.Int()
					}
					if v, ok := a.Get(schema.AttrAggregateLastSeen); ok {
						m.last, _ = time.Parse(time.RFC3339Nano, v.Str())
					}
					if v, ok := a.Get(schema.AttrCiliumSourceLabels); ok {
						m.labels = v.Slice().AsRaw()
					}
					out[key] = m
				}
			}
		}
	}
	return out
}

func TestMergeSumsExactly(t *testing.T) {
	sink := &consumertest.LogsSink{}
	p := newTestProcessor(t, time.Hour, 100, sink)
	ctx := context.Background()
	// Two nodes saw the same workload pairs, and each sends its windows.
	require.NoError(t, p.ConsumeLogs(ctx, logsOf(
		flow{src: "web", dst: "api", srcIP: "10.0.1.5", port: 8080, count: 3, first: 1 * time.Second, last: 9 * time.Second, labels: []string{"k8s:app=web"}},
		flow{src: "api", dst: "db", srcIP: "10.0.1.6", port: 5432, count: 1, first: 2 * time.Second, last: 2 * time.Second},
	)))
	require.NoError(t, p.ConsumeLogs(ctx, logsOf(
		flow{src: "web", dst: "api", srcIP: "10.0.2.7", port: 8080, count: 4, first: 0, last: 5 * time.Second, labels: []string{"k8s:app=web", "k8s:tier=front"}},
		flow{src: "web", dst: "api", srcIP: "10.0.2.7", port: 8080, count: 2, first: 31 * time.Second, last: 40 * time.Second},
		// The world is told apart by its address.
		flow{srcIP: "1.1.1.1", dst: "api", port: 8080, count: 5, first: 3 * time.Second, last: 4 * time.Second},
		flow{srcIP: "8.8.8.8", dst: "api", port: 8080, count: 6, first: 3 * time.Second, last: 4 * time.Second},
	)))
	assert.Zero(t, sink.LogRecordCount(), "nothing leaves before the window ends")
	require.NoError(t, p.Shutdown(ctx))

	got := collect(t, sink)
	require.Len(t, got, 4)
	web := got["web/10.0.1.5->api"]
	assert.EqualValues(t, 9, web.count)
	assert.Equal(t, base, web.first)
	assert.Equal(t, base.Add(40*time.Second), web.last)
	assert.Equal(t, []any{"k8s:app=web", "k8s:tier=front"}, web.labels)
	assert.EqualValues(t, 1, got["api/10.0.1.6->db"].count)
	assert.EqualValues(t, 5, got["<nil>/1.1.1.1->api"].count)
	assert.EqualValues(t, 6, got["<nil>/8.8.8.8->api"].count)
}

func TestOtherRecordsPassThrough(t *testing.T) {
	sink := &consumertest.LogsSink{}
	p := newTestProcessor(t, time.Hour, 100, sink)
	ld := logsOf(flow{src: "web", dst: "api", srcIP: "10.0.1.5", port: 80, count: 1})
	lrs := ld.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords()
	other := lrs.AppendEmpty()
	other.SetEventName(schema.EventL7AccessLog)
	other.Body().SetStr("l7")
	// Records that cannot be merged go on unchanged, for the exporter to report.
	for i, mutate := range []func(pcommon.Map){
		func(a pcommon.Map) { a.PutInt(schema.AttrAggregateCount, 0) },
		func(a pcommon.Map) { a.PutStr(schema.AttrAggregateCount, "3") },
		func(a pcommon.Map) { a.PutStr(schema.AttrAggregateLastSeen, "yesterday") },
		func(a pcommon.Map) { a.PutStr(schema.AttrAggregateLastSeen, base.Add(-time.Hour).Format(time.RFC3339)) },
		func(a pcommon.Map) { a.PutInt(schema.AttrAggregateLastSeen, 1) },
	} {
		flow{src: "web", dst: "api", srcIP: "10.0.1.5", port: 80, count: 1}.appendTo(lrs)
		bad := lrs.At(lrs.Len() - 1)
		bad.Body().SetStr(fmt.Sprint("bad", i))
		mutate(bad.Attributes())
	}
	require.NoError(t, p.ConsumeLogs(context.Background(), ld))
	assert.Equal(t, 6, sink.LogRecordCount())
	for _, lr := range []plog.LogRecord{sink.AllLogs()[0].ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().At(0)} {
		assert.Equal(t, schema.EventL7AccessLog, lr.EventName())
	}
	require.NoError(t, p.Shutdown(context.Background()))
	assert.Equal(t, 7, sink.LogRecordCount())
}

func TestAllMergedSkipsTheRest(t *testing.T) {
	sink := &consumertest.LogsSink{}
	p := newTestProcessor(t, time.Hour, 100, sink)
	require.NoError(t, p.ConsumeLogs(context.Background(), logsOf(flow{src: "web", dst: "api", port: 80, count: 2})))
	assert.Empty(t, sink.AllLogs(), "no empty plog.Logs are sent on")
	require.NoError(t, p.Shutdown(context.Background()))
	assert.Equal(t, 1, sink.LogRecordCount())
}

func TestFullWindowIsEmittedEarly(t *testing.T) {
	sink := &consumertest.LogsSink{}
	p := newTestProcessor(t, time.Hour, 2, sink)
	ctx := context.Background()
	var want int64
	for i := range 5 {
		f := flow{src: "web", dst: fmt.Sprint("api", i), port: 80, count: int64(i + 1)}
		want += f.count
		require.NoError(t, p.ConsumeLogs(ctx, logsOf(f, f)))
		want += f.count
	}
	assert.Equal(t, 4, sink.LogRecordCount(), "two full windows of two keys")
	require.NoError(t, p.Shutdown(ctx))
	var sum int64
	for _, m := range collect(t, sink) {
		sum += m.count
	}
	assert.Equal(t, want, sum)
}

func TestCountOverflowIsNotMerged(t *testing.T) {
	sink := &consumertest.LogsSink{}
	p := newTestProcessor(t, time.Hour, 100, sink)
	f := flow{src: "web", dst: "api", port: 80, count: 1<<62 - 1}
	require.NoError(t, p.ConsumeLogs(context.Background(), logsOf(f, f, f)))
	assert.Equal(t, 1, sink.LogRecordCount(), "the third would overflow and goes on as it is")
	require.NoError(t, p.Shutdown(context.Background()))
	assert.Equal(t, 2, sink.LogRecordCount())
}

func TestWindowEmitsOnTheClock(t *testing.T) {
	sink := &consumertest.LogsSink{}
	p := newTestProcessor(t, 50*time.Millisecond, 100, sink)
	require.NoError(t, p.ConsumeLogs(context.Background(), logsOf(flow{src: "web", dst: "api", port: 80, count: 2})))
	require.Eventually(t, func() bool { return sink.LogRecordCount() == 1 }, 10*time.Second, 5*time.Millisecond)
	require.NoError(t, p.Shutdown(context.Background()))
	assert.Equal(t, 1, sink.LogRecordCount())
}

func TestNextBoundary(t *testing.T) {
	at := func(s string) time.Time {
		tm, err := time.Parse(time.RFC3339Nano, s)
		require.NoError(t, err)
		return tm
	}
	assert.Equal(t, at("2026-03-01T12:00:30Z"), nextBoundary(at("2026-03-01T12:00:00Z"), 30*time.Second))
	assert.Equal(t, at("2026-03-01T12:00:30Z"), nextBoundary(at("2026-03-01T12:00:29.999Z"), 30*time.Second))
	assert.Equal(t, at("2026-03-01T12:01:00Z"), nextBoundary(at("2026-03-01T12:00:30.001Z"), 30*time.Second))
	assert.Equal(t, at("2026-03-01T12:05:00Z"), nextBoundary(at("2026-03-01T12:04:59Z"), 5*time.Minute))
}

func TestShutdownWithoutStart(t *testing.T) {
	sink := &consumertest.LogsSink{}
	cfg := createDefaultConfig().(*Config)
	p, err := NewFactory().CreateLogs(context.Background(), processortest.NewNopSettings(metadata.Type), cfg, sink)
	require.NoError(t, err)
	require.NoError(t, p.ConsumeLogs(context.Background(), logsOf(flow{src: "web", dst: "api", port: 80, count: 2})))
	require.NoError(t, p.Shutdown(context.Background()))
	assert.Equal(t, 1, sink.LogRecordCount())
}

// The merged allowed traffic reaches internal/flowgraph, which k8s_risk reads, as the hubble
// receiver's would; flow_merge counts as a flow source while it runs.
func TestMergedTrafficFeedsTheFlowGraph(t *testing.T) {
	flowgraph.Reset()
	t.Cleanup(flowgraph.Reset)
	t.Cleanup(flowgraph.Read())
	sink := &consumertest.LogsSink{}
	p := newTestProcessor(t, time.Hour, 100, sink)
	assert.Equal(t, 1, flowgraph.Sources())
	ld := logsOf(
		flow{src: "web", dst: "api", srcIP: "10.0.1.5", port: 8080, count: 3, first: time.Second, last: 2 * time.Second},
		flow{src: "web", dst: "api", srcIP: "10.0.2.5", port: 8080, count: 4, first: 0, last: 3 * time.Second},
		flow{srcIP: "1.1.1.1", dst: "api", port: 443, count: 2},
	)
	dropped := logsOf(flow{src: "web", dst: "db", port: 5432, count: 9})
	dropped.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().At(0).Attributes().PutStr(schema.AttrCiliumVerdict, "DROPPED")
	require.NoError(t, p.ConsumeLogs(context.Background(), ld))
	require.NoError(t, p.ConsumeLogs(context.Background(), dropped))
	require.NoError(t, p.Shutdown(context.Background()))
	assert.Equal(t, 0, flowgraph.Sources())

	got := map[flowgraph.Edge]int64{}
	for _, s := range flowgraph.Edges(base.Add(-time.Hour), base.Add(time.Hour)) {
		got[s.Edge] = s.Count
		if s.Dst.Name == "api" && s.Port == 8080 {
			assert.True(t, base.Equal(s.First), "first %v", s.First)
			assert.True(t, base.Add(3*time.Second).Equal(s.Last), "last %v", s.Last)
		}
	}
	api := flowgraph.Peer{Namespace: "shop", Kind: "Deployment", Name: "api"}
	assert.Equal(t, map[flowgraph.Edge]int64{
		{Src: flowgraph.Peer{Namespace: "shop", Kind: "Deployment", Name: "web"}, Dst: api, Port: 8080, Protocol: "tcp"}: 7,
		{Src: flowgraph.Peer{Reserved: flowgraph.ReservedWorld}, Dst: api, Port: 443, Protocol: "tcp"}:                   2,
	}, got)
}

// With window 0 (one sender, the chart's relay agent) nothing is held: each aggregate goes on
// unchanged as it arrives, and the allowed ones reach the flow graph.
func TestZeroWindowPassesAggregatesOnAndFeedsTheFlowGraph(t *testing.T) {
	flowgraph.Reset()
	t.Cleanup(flowgraph.Reset)
	t.Cleanup(flowgraph.Read())
	sink := &consumertest.LogsSink{}
	p := newTestProcessor(t, 0, 100, sink)
	assert.Equal(t, 1, flowgraph.Sources())
	web := flow{src: "web", dst: "api", srcIP: "10.0.1.5", port: 8080, count: 3, first: time.Second, last: 2 * time.Second}
	dropped := flow{src: "web", dst: "db", port: 5432, count: 9}
	ld := logsOf(web, web, dropped)
	ld.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().At(2).Attributes().PutStr(schema.AttrCiliumVerdict, "DROPPED")
	want := plog.NewLogs()
	ld.CopyTo(want)
	require.NoError(t, p.ConsumeLogs(context.Background(), ld))
	require.Len(t, sink.AllLogs(), 1, "passed on at once")
	assert.Equal(t, want, sink.AllLogs()[0], "unchanged, not merged")
	require.NoError(t, p.Shutdown(context.Background()))
	assert.Equal(t, 3, sink.LogRecordCount(), "nothing was held for the shutdown")
	assert.Equal(t, 0, flowgraph.Sources())

	got := map[flowgraph.Edge]int64{}
	for _, s := range flowgraph.Edges(base.Add(-time.Hour), base.Add(time.Hour)) {
		got[s.Edge] = s.Count
	}
	assert.Equal(t, map[flowgraph.Edge]int64{
		{Src: flowgraph.Peer{Namespace: "shop", Kind: "Deployment", Name: "web"}, Dst: flowgraph.Peer{Namespace: "shop", Kind: "Deployment", Name: "api"}, Port: 8080, Protocol: "tcp"}: 6,
	}, got)
}
