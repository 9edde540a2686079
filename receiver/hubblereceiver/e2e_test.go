package hubblereceiver

import (
	"context"
	"testing"
	"time"

	flowpb "github.com/cilium/cilium/api/v1/flow"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"google.golang.org/protobuf/proto"

	cloudv1 "github.com/kestrelai/otelcol-kestrel/api/cloud/v1"
	"github.com/kestrelai/otelcol-kestrel/internal/cloudconn"
	"github.com/kestrelai/otelcol-kestrel/internal/testutil"
	"github.com/kestrelai/otelcol-kestrel/internal/testutil/pipelinetest"
)

// cloudKey is what a cloud.v1.Flow tells apart: refKey without verdict and drop reason,
// which the message reduces to allowed.
type cloudKey struct {
	src, dst       string
	port           int64
	transport, dir string
	allowed        bool
}

func cloudEndpoint(e *cloudv1.Endpoint, ip string) string {
	switch e.GetKind() {
	case "Unmanaged", "Unknown":
		return "ip:" + ip
	}
	return e.GetNs() + "/" + e.GetKind() + "/" + e.GetName()
}

// The replay fixture goes through the receiver, the kestrel exporter and the kestrel_command
// extension to kestrel-devcloud, and arrives as aggregated cloud.v1.Flow messages on
// StreamFlows, with counts and event times that match the fixture.
func TestEndToEndFlowsReachCloud(t *testing.T) {
	p := pipelinetest.Start(t)
	events := loadFixture(t)
	_, addr := serveRelay(t, newFakeRelay(events), "127.0.0.1:0")
	tt := componenttest.NewTelemetry()
	t.Cleanup(func() { require.NoError(t, tt.Shutdown(context.Background())) })
	cfg := testConfig(addr)
	cfg.Aggregation.Window = 100 * time.Millisecond
	_, stop := startReceiver(t, cfg, p.Exporter, tt, nil)

	want := map[cloudKey]*refAgg{}
	ref, flows := expected(events, nil)
	for k, a := range ref {
		ck := cloudKey{src: k.src, dst: k.dst, port: max(k.port, 0), transport: k.transport, dir: k.dir, allowed: k.verdict == "FORWARDED"}
		w := want[ck]
		if w == nil {
			w = &refAgg{first: a.first, last: a.last}
			want[ck] = w
		}
		w.count += a.count
		if a.first.Before(w.first) {
			w.first = a.first
		}
		if a.last.After(w.last) {
			w.last = a.last
		}
	}
	replies := countFlows(events, func(f *flowpb.Flow) bool { return f.IsReply.GetValue() })
	require.Eventually(t, func() bool { return testutil.MetricSum(tt, "otelcol.hubble_receiver.flows") >= flows+replies }, waitFor, tick)
	stop()

	got := p.Cloud.WaitPayloads(t, cloudconn.StreamFlows, &cloudv1.Flow{}, func(ps []proto.Message) bool { return flowCount(ps) >= flows })
	require.Equal(t, flows, flowCount(got))

	merged := map[cloudKey]*refAgg{}
	for _, m := range got {
		f := m.(*cloudv1.Flow)
		transport := map[string]string{"TCP": "tcp", "UDP": "udp", "ICMPv4": "icmp", "ICMPv6": "icmp"}[f.Protocol]
		k := cloudKey{
			src: cloudEndpoint(f.Src, f.SrcIp), dst: cloudEndpoint(f.Dst, f.DstIp),
			port: int64(f.Port), transport: transport, dir: f.Direction, allowed: f.Allowed,
		}
		a := merged[k]
		if a == nil {
			a = &refAgg{first: f.FirstSeen.AsTime(), last: f.LastSeen.AsTime()}
			merged[k] = a
		}
		a.count += f.Count
		if f.FirstSeen.AsTime().Before(a.first) {
			a.first = f.FirstSeen.AsTime()
		}
		if f.LastSeen.AsTime().After(a.last) {
			a.last = f.LastSeen.AsTime()
		}
		if k.src == "shop/Deployment/frontend" && k.dst == "shop/Deployment/cart" && k.dir == "EGRESS" {
			assert.Equal(t, "frontend-egress", f.EgressAllowedBy[0].GetName())
			assert.Equal(t, []string{"k8s:app=frontend", "k8s:io.kubernetes.pod.namespace=shop"}, f.Src.Labels)
		}
	}
	require.Len(t, merged, len(want))
	for k, w := range want {
		g := merged[k]
		require.NotNil(t, g, "missing %+v", k)
		assert.Equal(t, w.count, g.count, "%+v", k)
		assert.True(t, w.first.Equal(g.first), "%+v first", k)
		assert.True(t, w.last.Equal(g.last), "%+v last", k)
	}
	assert.NotEmpty(t, p.Cloud.Records())
}

// flowCount is how many flows the cloud's Flow messages stand for: the sum of their counts.
func flowCount(ps []proto.Message) int64 {
	var n int64
	for _, m := range ps {
		n += m.(*cloudv1.Flow).Count
	}
	return n
}
