package hubblereceiver

import (
	"context"
	"testing"
	"time"

	flowpb "github.com/cilium/cilium/api/v1/flow"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"

	"github.com/kestrelai/otelcol-kestrel/internal/flowgraph"
	"github.com/kestrelai/otelcol-kestrel/internal/testutil"
	"github.com/kestrelai/otelcol-kestrel/receiver/hubblereceiver/internal/fixturegen"
)

// The allowed flows of every window reach internal/flowgraph, one edge per source,
// destination, port and protocol, and the receiver counts as a flow source while it runs.
func TestForwardedFlowsReachTheFlowGraph(t *testing.T) {
	flowgraph.Reset()
	t.Cleanup(flowgraph.Reset)
	t.Cleanup(flowgraph.Read())
	events := loadFixture(t)
	_, addr := serveRelay(t, newFakeRelay(events), "127.0.0.1:0")
	tt := componenttest.NewTelemetry()
	t.Cleanup(func() { require.NoError(t, tt.Shutdown(context.Background())) })
	sources := flowgraph.Sources()
	_, stop := startReceiver(t, testConfig(addr), &consumertest.LogsSink{}, tt, nil)
	assert.Equal(t, sources+1, flowgraph.Sources())

	forwarded := func(f *flowpb.Flow) bool { return f.Verdict == flowpb.Verdict_FORWARDED }
	want, n := expected(events, forwarded)
	all := countFlows(events, func(*flowpb.Flow) bool { return true })
	require.Eventually(t, func() bool {
		return testutil.MetricSum(tt, "otelcol.hubble_receiver.flows") >= all
	}, waitFor, tick)
	stop()
	assert.Equal(t, sources, flowgraph.Sources())

	// The reference keys without direction and verdict: both ends of a connection report it.
	type edgeKey struct{ src, dst string }
	wantEdges := map[edgeKey]int64{}
	for k, a := range want {
		if k.src[:3] != "ip:" && k.dst[:3] != "ip:" {
			wantEdges[edgeKey{k.src, k.dst}] += a.count
		}
	}
	got := map[edgeKey]int64{}
	var total int64
	for _, s := range flowgraph.Edges(time.Time{}, fixturegen.Start.Add(time.Hour)) {
		total += s.Count
		if s.Src.Reserved != "" || s.Dst.Reserved != "" {
			continue
		}
		got[edgeKey{s.Src.Namespace + "/" + s.Src.Kind + "/" + s.Src.Name, s.Dst.Namespace + "/" + s.Dst.Kind + "/" + s.Dst.Name}] += s.Count
	}
	assert.Equal(t, n, total, "every allowed flow is counted once")
	assert.Equal(t, wantEdges, got)
}

func TestReservedOf(t *testing.T) {
	for want, in := range map[string]struct {
		identity uint32
		labels   []string
	}{
		flowgraph.ReservedKubeAPIServer: {identity: 1, labels: []string{"reserved:host", "reserved:kube-apiserver"}},
		flowgraph.ReservedWorld:         {labels: []string{"reserved:world-ipv4"}},
		flowgraph.ReservedHost:          {identity: 1},
		flowgraph.ReservedRemoteNode:    {identity: 6},
		flowgraph.ReservedOther:         {identity: 4, labels: []string{"reserved:health"}},
	} {
		assert.Equal(t, want, reservedOf(in.identity, pack(in.labels)))
	}
	assert.Equal(t, flowgraph.ReservedWorld, reservedOf(2, ""))
	assert.Equal(t, flowgraph.Peer{Namespace: "shop", Kind: "Deployment", Name: "web"},
		peerOf(endpoint{key: endpointKey{namespace: "shop", kind: "Deployment", name: "web"}}))
	assert.Equal(t, flowgraph.Peer{Reserved: flowgraph.ReservedWorld},
		peerOf(endpoint{key: endpointKey{kind: kindUnmanaged, name: "reserved:world"}, identity: 2}))
}

// Edges are recorded only while a reader (k8s_risk) is registered, and a window's edges are
// handed over when it ends: a reader that registers while a window is open gets the flows
// the window received before it registered; with no reader the window records nothing.
func TestFlowGraphOnlyWhileRead(t *testing.T) {
	flowgraph.Reset()
	t.Cleanup(flowgraph.Reset)
	events := loadFixture(t)
	_, n := expected(events, func(f *flowpb.Flow) bool { return f.Verdict == flowpb.Verdict_FORWARDED })
	require.Positive(t, n)
	all := countFlows(events, func(*flowpb.Flow) bool { return true })
	total := func() (c int64) {
		for _, s := range flowgraph.Edges(time.Time{}, fixturegen.Start.Add(time.Hour)) {
			c += s.Count
		}
		return c
	}

	for _, reader := range []bool{false, true} {
		flowgraph.Reset()
		_, addr := serveRelay(t, newFakeRelay(events), "127.0.0.1:0")
		tt := componenttest.NewTelemetry()
		t.Cleanup(func() { require.NoError(t, tt.Shutdown(context.Background())) })
		cfg := testConfig(addr)
		cfg.Aggregation.Window = time.Hour // one window, ended by Shutdown
		_, stop := startReceiver(t, cfg, &consumertest.LogsSink{}, tt, nil)
		require.Eventually(t, func() bool {
			return testutil.MetricSum(tt, "otelcol.hubble_receiver.flows") >= all
		}, waitFor, tick)
		if reader {
			t.Cleanup(flowgraph.Read()) // after every flow was received, before the window ends
		}
		stop()
		if reader {
			assert.Equal(t, n, total(), "the reader gets the whole window")
		} else {
			assert.Zero(t, total(), "no reader, no edges")
		}
	}
}
