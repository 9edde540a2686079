package hubblereceiver

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	flowpb "github.com/cilium/cilium/api/v1/flow"
	observerpb "github.com/cilium/cilium/api/v1/observer"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componentstatus"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/otel/attribute"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/protobuf/proto"

	"github.com/kestrelai/otelcol-kestrel/internal/devcloud"
	"github.com/kestrelai/otelcol-kestrel/internal/schema"
	"github.com/kestrelai/otelcol-kestrel/internal/testutil"
	"github.com/kestrelai/otelcol-kestrel/internal/testutil/relaytest"
	"github.com/kestrelai/otelcol-kestrel/receiver/hubblereceiver/internal/fixturegen"
	"github.com/kestrelai/otelcol-kestrel/receiver/hubblereceiver/internal/metadatatest"
)

const (
	waitFor = 20 * time.Second
	tick    = 5 * time.Millisecond
)

func testConfig(endpoint string) *Config {
	cfg := createDefaultConfig().(*Config)
	cfg.Endpoint = endpoint
	cfg.TLS.Insecure = true
	cfg.Aggregation.Window = 50 * time.Millisecond
	cfg.Reconnect.InitialInterval = 10 * time.Millisecond
	cfg.Reconnect.MaxInterval = 50 * time.Millisecond
	return cfg
}

// startReceiver starts a receiver whose first request asks for flows since the fixture's
// start. The returned stop shuts it down (once; it also runs when the test ends).
func startReceiver(t *testing.T, cfg *Config, sink consumer.Logs, tt *componenttest.Telemetry, host component.Host) (*hubbleReceiver, func()) {
	t.Helper()
	require.NoError(t, cfg.Validate())
	r, err := newReceiver(cfg, metadatatest.NewSettings(tt), sink)
	require.NoError(t, err)
	r.now = func() time.Time { return fixturegen.Start }
	if host == nil {
		host = componenttest.NewNopHost()
	}
	require.NoError(t, r.Start(context.Background(), host))
	var once sync.Once
	stop := func() { once.Do(func() { require.NoError(t, r.Shutdown(context.Background())) }) }
	t.Cleanup(stop)
	return r, stop
}

// receiveAll runs a receiver with cfg until it has counted every flow of events (which its
// Relay serves), then stops it.
func receiveAll(t *testing.T, cfg *Config, events []*observerpb.GetFlowsResponse) (*componenttest.Telemetry, *consumertest.LogsSink) {
	t.Helper()
	tt := componenttest.NewTelemetry()
	t.Cleanup(func() { require.NoError(t, tt.Shutdown(context.Background())) })
	sink := &consumertest.LogsSink{}
	_, stop := startReceiver(t, cfg, sink, tt, nil)
	n := countFlows(events, func(*flowpb.Flow) bool { return true })
	require.Eventually(t, func() bool { return testutil.MetricSum(tt, "otelcol.hubble_receiver.flows") == n }, waitFor, tick)
	stop()
	return tt, sink
}

func outcome(v string) attribute.KeyValue { return attribute.String("outcome", v) }

// refKey is the aggregation key as the issue specifies it, computed independently of the
// receiver's code: endpoints by workload, else pod, else address.
type refKey struct {
	src, dst                        string
	port                            int64 // -1 when the record has none (ICMP)
	transport, dir, verdict, reason string
}

type refAgg struct {
	count       int64
	first, last time.Time
}

func refEndpoint(ep *flowpb.Endpoint, ip string) string {
	switch {
	case len(ep.GetWorkloads()) > 0:
		return ep.Namespace + "/" + ep.Workloads[0].Kind + "/" + ep.Workloads[0].Name
	case ep.GetPodName() != "":
		return ep.Namespace + "/Pod/" + ep.PodName
	}
	return "ip:" + ip
}

func refKeyOf(f *flowpb.Flow) refKey {
	k := refKey{
		src:     refEndpoint(f.Source, f.IP.GetSource()),
		dst:     refEndpoint(f.Destination, f.IP.GetDestination()),
		port:    -1,
		dir:     f.TrafficDirection.String(),
		verdict: f.Verdict.String(),
	}
	if f.Verdict == flowpb.Verdict_DROPPED {
		k.reason = f.DropReasonDesc.String()
	}
	switch p := f.L4.GetProtocol().(type) {
	case *flowpb.Layer4_TCP:
		k.transport, k.port = "tcp", int64(p.TCP.DestinationPort)
	case *flowpb.Layer4_UDP:
		k.transport, k.port = "udp", int64(p.UDP.DestinationPort)
	case *flowpb.Layer4_ICMPv4, *flowpb.Layer4_ICMPv6:
		k.transport = "icmp"
	}
	return k
}

// expected aggregates the fixture's non-reply flows that keep accepts.
func expected(events []*observerpb.GetFlowsResponse, keep func(*flowpb.Flow) bool) (map[refKey]*refAgg, int64) {
	out := map[refKey]*refAgg{}
	var n int64
	for _, ev := range events {
		f := ev.GetFlow()
		if f == nil || f.IsReply.GetValue() || (keep != nil && !keep(f)) {
			continue
		}
		n++
		k := refKeyOf(f)
		t := f.Time.AsTime()
		a := out[k]
		if a == nil {
			a = &refAgg{first: t, last: t}
			out[k] = a
		}
		a.count++
		if t.Before(a.first) {
			a.first = t
		}
		if t.After(a.last) {
			a.last = t
		}
	}
	return out, n
}

func str(m pcommon.Map, key string) string {
	v, _ := m.Get(key)
	return v.Str()
}

func recEndpoint(m pcommon.Map, ns, kind, name, pod, addr string) string {
	switch {
	case str(m, kind) != "":
		return str(m, ns) + "/" + str(m, kind) + "/" + str(m, name)
	case str(m, pod) != "":
		return str(m, ns) + "/Pod/" + str(m, pod)
	}
	return "ip:" + str(m, addr)
}

// forEachRecord calls fn with every record the sink received.
func forEachRecord(sink *consumertest.LogsSink, fn func(lr plog.LogRecord)) {
	for lr := range testutil.LogRecords(sink.AllLogs()...) {
		fn(lr)
	}
}

// received merges the records by reference key (a key can appear in several windows).
func received(t *testing.T, sink *consumertest.LogsSink) map[refKey]*refAgg {
	out := map[refKey]*refAgg{}
	forEachRecord(sink, func(lr plog.LogRecord) {
		require.Equal(t, schema.EventNetworkFlow, lr.EventName())
		m := lr.Attributes()
		k := refKey{
			src:       recEndpoint(m, schema.AttrSourceNamespace, schema.AttrSourceWorkloadKind, schema.AttrSourceWorkloadName, schema.AttrSourcePod, schema.AttrSourceAddress),
			dst:       recEndpoint(m, schema.AttrDestNamespace, schema.AttrDestWorkloadKind, schema.AttrDestWorkloadName, schema.AttrDestPod, schema.AttrDestinationAddress),
			port:      -1,
			transport: str(m, schema.AttrNetworkTransport),
			dir:       str(m, schema.AttrCiliumTrafficDirection),
			verdict:   str(m, schema.AttrCiliumVerdict),
			reason:    str(m, schema.AttrCiliumDropReason),
		}
		if v, ok := m.Get(schema.AttrDestinationPort); ok {
			k.port = v.Int()
		}
		count, ok := m.Get(schema.AttrAggregateCount)
		require.True(t, ok)
		last, err := time.Parse(time.RFC3339Nano, str(m, schema.AttrAggregateLastSeen))
		require.NoError(t, err)
		first := lr.Timestamp().AsTime()
		a := out[k]
		if a == nil {
			a = &refAgg{first: first, last: last}
			out[k] = a
		}
		a.count += count.Int()
		if first.Before(a.first) {
			a.first = first
		}
		if last.After(a.last) {
			a.last = last
		}
	})
	return out
}

func assertAggregates(t *testing.T, want, got map[refKey]*refAgg) {
	t.Helper()
	for k, w := range want {
		g, ok := got[k]
		if !assert.True(t, ok, "missing aggregate %+v", k) {
			continue
		}
		assert.Equal(t, w.count, g.count, "count of %+v", k)
		assert.True(t, w.first.Equal(g.first), "first seen of %+v: want %v, got %v", k, w.first, g.first)
		assert.True(t, w.last.Equal(g.last), "last seen of %+v: want %v, got %v", k, w.last, g.last)
	}
	for k := range got {
		assert.Contains(t, want, k, "unexpected aggregate")
	}
}

func countFlows(events []*observerpb.GetFlowsResponse, pred func(*flowpb.Flow) bool) int64 {
	var n int64
	for _, ev := range events {
		if f := ev.GetFlow(); f != nil && pred(f) {
			n++
		}
	}
	return n
}

func TestReplayIsAggregatedByWorkloadPairFromEventTime(t *testing.T) {
	events := loadFixture(t)
	relay := newFakeRelay(events)
	_, addr := serveRelay(t, relay, "127.0.0.1:0")
	tt := componenttest.NewTelemetry()
	t.Cleanup(func() { require.NoError(t, tt.Shutdown(context.Background())) })
	sink := &consumertest.LogsSink{}
	host := &testutil.StatusHost{}
	cfg := testConfig(addr)
	cfg.Aggregation.Window = time.Hour // one window, emitted by the shutdown
	_, stop := startReceiver(t, cfg, sink, tt, host)

	want, flows := expected(events, nil)
	replies := countFlows(events, func(f *flowpb.Flow) bool { return f.IsReply.GetValue() })
	require.Eventually(t, func() bool {
		return testutil.MetricSum(tt, "otelcol.hubble_receiver.flows") >= flows+replies
	}, waitFor, tick)
	// The flows metric is observed while the receiver runs.
	assert.Equal(t, flows, testutil.MetricSum(tt, "otelcol.hubble_receiver.flows", outcome("aggregated")))
	assert.Equal(t, replies, testutil.MetricSum(tt, "otelcol.hubble_receiver.flows", outcome("reply")))
	assert.Zero(t, testutil.MetricSum(tt, "otelcol.hubble_receiver.flows", outcome("duplicate")))
	stop()

	assertAggregates(t, want, received(t, sink))
	assert.Equal(t, len(want), sink.LogRecordCount(), "one record per key")
	assert.Less(t, len(want), int(flows)/20)
	assert.Equal(t, int64(17), testutil.MetricSum(tt, "otelcol.hubble_receiver.lost_events", attribute.String("source", "HUBBLE_RING_BUFFER")))
	assert.Equal(t, int64(5), testutil.MetricSum(tt, "otelcol.hubble_receiver.lost_events", attribute.String("source", "OBSERVER_EVENTS_QUEUE")))
	assert.Contains(t, host.Statuses(), componentstatus.StatusOK)

	reqs := relay.Requests()
	require.Len(t, reqs, 1)
	assert.True(t, reqs[0].Follow)
	assert.True(t, reqs[0].Since.AsTime().Equal(fixturegen.Start))

	// One record in detail: the frontend → cart connections, as seen leaving frontend.
	var lr plog.LogRecord
	forEachRecord(sink, func(r plog.LogRecord) {
		m := r.Attributes()
		if str(m, schema.AttrSourceWorkloadName) == "frontend" && str(m, schema.AttrDestWorkloadName) == "cart" &&
			str(m, schema.AttrCiliumTrafficDirection) == "EGRESS" {
			lr = r
		}
	})
	require.NotEqual(t, plog.LogRecord{}, lr)
	m := lr.Attributes().AsRaw()
	assert.Equal(t, "shop", m[schema.AttrSourceNamespace])
	assert.Equal(t, "Deployment", m[schema.AttrSourceWorkloadKind])
	assert.Equal(t, "shop", m[schema.AttrDestNamespace])
	assert.Equal(t, "tcp", m[schema.AttrNetworkTransport])
	assert.Equal(t, "ipv4", m[schema.AttrNetworkType])
	assert.Equal(t, int64(8080), m[schema.AttrDestinationPort])
	assert.NotContains(t, m, schema.AttrSourcePort)
	assert.Equal(t, "FORWARDED", m[schema.AttrCiliumVerdict])
	assert.NotContains(t, m, schema.AttrCiliumDropReason)
	assert.Equal(t, int64(12001), m[schema.AttrCiliumSourceIdentity])
	assert.Equal(t, []any{"k8s:app=frontend", "k8s:io.kubernetes.pod.namespace=shop"}, m[schema.AttrCiliumSourceLabels])
	assert.Regexp(t, `^10\.244\.1\.\d+$`, m[schema.AttrSourceAddress])
	policies := m[schema.AttrCiliumEgressAllowedBy].([]any)
	require.Len(t, policies, 1)
	p := policies[0].(map[string]any)
	assert.Equal(t, "frontend-egress", p[schema.PolicyName])
	assert.Equal(t, "shop", p[schema.PolicyNamespace])
	assert.Equal(t, "CiliumNetworkPolicy", p[schema.PolicyKind])
	assert.Equal(t, int64(7), p[schema.PolicyRevision])
	assert.Equal(t, plog.SeverityNumberInfo, lr.SeverityNumber())
	assert.Equal(t, 2026, lr.Timestamp().AsTime().Year(), "event time, not the wall clock")
}

func TestFiltersGoToRelay(t *testing.T) {
	events := loadFixture(t)
	relay := newFakeRelay(events)
	_, addr := serveRelay(t, relay, "127.0.0.1:0")
	tt := componenttest.NewTelemetry()
	t.Cleanup(func() { require.NoError(t, tt.Shutdown(context.Background())) })
	sink := &consumertest.LogsSink{}
	cfg := testConfig(addr)
	cfg.Allowlist = []map[string]any{{"verdict": []any{"DROPPED"}}, {"source_pod": []any{"default/"}}}
	cfg.Denylist = []map[string]any{{"destinationPort": []any{"22"}}}
	_, stop := startReceiver(t, cfg, sink, tt, nil)

	keep := func(f *flowpb.Flow) bool {
		return (f.Verdict == flowpb.Verdict_DROPPED || f.Source.GetNamespace() == "default") && destPort(f) != 22
	}
	want, flows := expected(events, keep)
	all := countFlows(events, keep)
	require.Eventually(t, func() bool { return testutil.MetricSum(tt, "otelcol.hubble_receiver.flows") >= all }, waitFor, tick)
	assert.Equal(t, flows, testutil.MetricSum(tt, "otelcol.hubble_receiver.flows", outcome("aggregated")))
	stop()

	assertAggregates(t, want, received(t, sink))
	reqs := relay.Requests()
	require.Len(t, reqs, 1)
	assert.Empty(t, cmpFilters(t, []*flowpb.FlowFilter{
		{Verdict: []flowpb.Verdict{flowpb.Verdict_DROPPED}},
		{SourcePod: []string{"default/"}},
	}, reqs[0].Whitelist))
	assert.Empty(t, cmpFilters(t, []*flowpb.FlowFilter{{DestinationPort: []string{"22"}}}, reqs[0].Blacklist))
}

func cmpFilters(t *testing.T, want, got []*flowpb.FlowFilter) string {
	t.Helper()
	if len(want) != len(got) {
		return "different number of filters"
	}
	for i := range want {
		if !proto.Equal(want[i], got[i]) {
			return "filter " + want[i].String() + " != " + got[i].String()
		}
	}
	return ""
}

// A Relay restart in the middle of the stream: the receiver reconnects, asks to resume from
// shortly before the last flow it received, and skips the flows it already had, so every flow
// is counted exactly once.
func TestRelayRestartResumesWithoutDuplicates(t *testing.T) {
	events := loadFixture(t)
	relay1 := newFakeRelay(events)
	relay1.PauseAfter = 4000
	srv1, addr := serveRelay(t, relay1, "127.0.0.1:0")
	tt := componenttest.NewTelemetry()
	t.Cleanup(func() { require.NoError(t, tt.Shutdown(context.Background())) })
	sink := &consumertest.LogsSink{}
	host := &testutil.StatusHost{}
	cfg := testConfig(addr)
	cfg.ResumeOverlap = 500 * time.Millisecond
	_, stop := startReceiver(t, cfg, sink, tt, host)

	<-relay1.Paused
	require.Eventually(t, func() bool { return testutil.MetricSum(tt, "otelcol.hubble_receiver.flows") == 4000 }, waitFor, tick)
	srv1.Stop()

	relay2 := newFakeRelay(events)
	serveRelay(t, relay2, addr)
	want, flows := expected(events, nil)
	replies := countFlows(events, func(f *flowpb.Flow) bool { return f.IsReply.GetValue() })
	require.Eventually(t, func() bool {
		return testutil.MetricSum(tt, "otelcol.hubble_receiver.flows", outcome("aggregated"))+
			testutil.MetricSum(tt, "otelcol.hubble_receiver.flows", outcome("reply")) >= flows+replies
	}, waitFor, tick)
	assert.Equal(t, flows, testutil.MetricSum(tt, "otelcol.hubble_receiver.flows", outcome("aggregated")))
	duplicates := testutil.MetricSum(tt, "otelcol.hubble_receiver.flows", outcome("duplicate"))
	stop()

	assertAggregates(t, want, received(t, sink))

	// The second relay was asked for flows since the 4000th flow's time minus the overlap,
	// and the flows it sent again were recognised.
	var last time.Time
	n := 0
	for _, ev := range events {
		if f := ev.GetFlow(); f != nil {
			n++
			if n == 4000 {
				last = f.Time.AsTime()
				break
			}
		}
	}
	reqs := relay2.Requests()
	require.NotEmpty(t, reqs)
	since := reqs[0].Since.AsTime()
	assert.True(t, since.Equal(last.Add(-cfg.ResumeOverlap)), "since %v, last flow %v", since, last)
	var resent int64
	n = 0
	for _, ev := range events {
		if f := ev.GetFlow(); f != nil {
			n++
			if n <= 4000 && !f.Time.AsTime().Before(since) {
				resent++
			}
		}
	}
	assert.Positive(t, resent)
	assert.Equal(t, resent, duplicates)
	assert.Positive(t, testutil.MetricSum(tt, "otelcol.hubble_receiver.reconnects"))
	assert.Equal(t, int64(17), testutil.MetricSum(tt, "otelcol.hubble_receiver.lost_events", attribute.String("source", "HUBBLE_RING_BUFFER")), "lost events are not counted twice")
	assert.Contains(t, host.Statuses(), componentstatus.StatusRecoverableError)
	assert.Equal(t, componentstatus.StatusOK, host.Statuses()[len(host.Statuses())-1])
}

func TestDisabled(t *testing.T) {
	tests := []struct {
		name    string
		enabled bool
		env     string
		want    bool
	}{
		{name: "enabled", enabled: true, want: true},
		{name: "config", enabled: false, want: false},
		{name: "env", enabled: true, env: "true", want: false},
		{name: "env false", enabled: true, env: "false", want: true},
		{name: "env not a boolean", enabled: true, env: "maybe", want: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(disableEnv, tc.env)
			relay := newFakeRelay(loadFixture(t))
			_, addr := serveRelay(t, relay, "127.0.0.1:0")
			cfg := testConfig(addr)
			cfg.Enabled = tc.enabled
			tt := componenttest.NewTelemetry()
			t.Cleanup(func() { require.NoError(t, tt.Shutdown(context.Background())) })
			r, stop := startReceiver(t, cfg, &consumertest.LogsSink{}, tt, nil)
			if tc.want {
				require.Eventually(t, func() bool { return len(relay.Requests()) == 1 }, waitFor, tick)
			} else {
				assert.Nil(t, r.conn, "no connection to Relay")
			}
			stop()
			assert.Equal(t, tc.want, len(relay.Requests()) == 1)
		})
	}
}

// The node agent follows the Hubble server's unix socket on its node (the chart's
// unix:///var/run/cilium/hubble.sock), and abstract sockets are dialled as such.
func TestUnixSocket(t *testing.T) {
	events := loadFixture(t)[:500]
	for name, endpoint := range map[string]func(t *testing.T) (network, address, endpoint string){
		"path": func(t *testing.T) (string, string, string) {
			path := filepath.Join(t.TempDir(), "hubble.sock")
			return "unix", path, "unix://" + path
		},
		"abstract": func(*testing.T) (string, string, string) {
			name := fmt.Sprintf("kestrel-hubble-test-%d", time.Now().UnixNano())
			return "unix", "@" + name, "unix-abstract:" + name
		},
	} {
		t.Run(name, func(t *testing.T) {
			network, address, ep := endpoint(t)
			lis, err := net.Listen(network, address)
			require.NoError(t, err)
			relaytest.ServeOn(t, newFakeRelay(events), lis)
			tt, _ := receiveAll(t, testConfig(ep), events)
			assert.Zero(t, testutil.MetricSum(tt, "otelcol.hubble_receiver.reconnects"))
		})
	}
}

// Relay behind TLS with its own CA and the SAN Cilium gives it; and a relay without TLS is
// not used with the default (TLS) configuration: no silent plaintext fallback.
func TestTLS(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "certs")
	require.NoError(t, devcloud.GenerateCerts(dir, devcloud.CertOptions{Hosts: []string{"*.hubble-relay.cilium.io"}}))
	creds, err := credentials.NewServerTLSFromFile(filepath.Join(dir, devcloud.ServerCertFile), filepath.Join(dir, devcloud.ServerKeyFile))
	require.NoError(t, err)
	events := loadFixture(t)[:200]

	t.Run("tls", func(t *testing.T) {
		_, addr := serveRelay(t, newFakeRelay(events), "127.0.0.1:0", grpc.Creds(creds))
		cfg := testConfig(addr)
		cfg.TLS.Insecure = false
		cfg.TLS.CAFile = filepath.Join(dir, devcloud.CACertFile)
		cfg.TLS.ServerName = "ui.hubble-relay.cilium.io"
		_, sink := receiveAll(t, cfg, events)
		assert.Positive(t, sink.LogRecordCount())
	})

	t.Run("plaintext relay", func(t *testing.T) {
		relay := newFakeRelay(events)
		_, addr := serveRelay(t, relay, "127.0.0.1:0")
		cfg := testConfig(addr)
		cfg.TLS.Insecure = false
		cfg.TLS.CAFile = filepath.Join(dir, devcloud.CACertFile)
		tt := componenttest.NewTelemetry()
		t.Cleanup(func() { require.NoError(t, tt.Shutdown(context.Background())) })
		host := &testutil.StatusHost{}
		sink := &consumertest.LogsSink{}
		_, stop := startReceiver(t, cfg, sink, tt, host)
		require.Eventually(t, func() bool { return testutil.MetricSum(tt, "otelcol.hubble_receiver.reconnects") >= 2 }, waitFor, tick)
		stop()
		assert.Empty(t, relay.Requests())
		assert.Zero(t, sink.LogRecordCount())
		assert.Contains(t, host.Statuses(), componentstatus.StatusRecoverableError)
		assert.NotContains(t, host.Statuses(), componentstatus.StatusOK)
	})
}

func TestLostEventsAndRepliesAreCountedNotAggregated(t *testing.T) {
	events := []*observerpb.GetFlowsResponse{
		{ResponseTypes: &observerpb.GetFlowsResponse_LostEvents{LostEvents: &flowpb.LostEvent{
			Source: flowpb.LostEventSource_PERF_EVENT_RING_BUFFER, NumEventsLost: 3,
		}}, Time: loadFixture(t)[1].Time},
	}
	for _, ev := range loadFixture(t) {
		if ev.GetFlow().GetIsReply().GetValue() {
			events = append(events, ev)
			if len(events) == 11 {
				break
			}
		}
	}
	_, addr := serveRelay(t, newFakeRelay(events), "127.0.0.1:0")
	tt := componenttest.NewTelemetry()
	t.Cleanup(func() { require.NoError(t, tt.Shutdown(context.Background())) })
	sink := &consumertest.LogsSink{}
	_, stop := startReceiver(t, testConfig(addr), sink, tt, nil)
	require.Eventually(t, func() bool { return testutil.MetricSum(tt, "otelcol.hubble_receiver.flows", outcome("reply")) == 10 }, waitFor, tick)
	require.Eventually(t, func() bool {
		return testutil.MetricSum(tt, "otelcol.hubble_receiver.lost_events", attribute.String("source", "PERF_EVENT_RING_BUFFER")) == 3
	}, waitFor, tick)
	stop()
	assert.Zero(t, sink.LogRecordCount())
}

func TestFixtureCoverage(t *testing.T) {
	events := loadFixture(t)
	count := func(pred func(*flowpb.Flow) bool) int64 { return countFlows(events, pred) }
	assert.GreaterOrEqual(t, count(func(*flowpb.Flow) bool { return true }), int64(10_000))
	for _, proto := range []string{"tcp", "udp", "icmpv4", "icmpv6"} {
		assert.Positive(t, count(func(f *flowpb.Flow) bool { return protocolName(f) == proto }), proto)
	}
	reasons := map[flowpb.DropReason]bool{}
	namespaces := map[string]bool{}
	count(func(f *flowpb.Flow) bool {
		if f.Verdict == flowpb.Verdict_DROPPED {
			reasons[f.DropReasonDesc] = true
		}
		namespaces[f.Source.GetNamespace()] = true
		return true
	})
	assert.GreaterOrEqual(t, len(reasons), 3, "drop reasons")
	assert.GreaterOrEqual(t, len(namespaces), 5, "namespaces")
	assert.Positive(t, count(func(f *flowpb.Flow) bool { return f.IsReply.GetValue() }), "replies")
	assert.Positive(t, count(func(f *flowpb.Flow) bool { return f.IsReply == nil }), "flows of unknown direction")
	assert.Positive(t, count(func(f *flowpb.Flow) bool { return len(f.IngressAllowedBy) > 0 }), "ingress policies")
	assert.Positive(t, count(func(f *flowpb.Flow) bool { return len(f.IngressDeniedBy) > 0 }), "deny policies")
	assert.Positive(t, count(func(f *flowpb.Flow) bool { return f.IP.GetIpVersion() == flowpb.IPVersion_IPv6 }), "IPv6")
	var equalTimes int
	for i := 1; i < len(events); i++ {
		assert.False(t, events[i].Time.AsTime().Before(events[i-1].Time.AsTime()), "time order")
		if events[i].GetFlow() != nil && proto.Equal(events[i].Time, events[i-1].Time) {
			equalTimes++
		}
	}
	assert.Positive(t, equalTimes, "flows with equal timestamps")
	assert.True(t, slices.ContainsFunc(events, func(ev *observerpb.GetFlowsResponse) bool { return ev.GetLostEvents() != nil }))
}
