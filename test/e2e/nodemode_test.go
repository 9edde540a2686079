package e2e

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	flowpb "github.com/cilium/cilium/api/v1/flow"
	observerpb "github.com/cilium/cilium/api/v1/observer"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	cloudv1 "github.com/kestrelai/otelcol-kestrel/api/cloud/v1"
	"github.com/kestrelai/otelcol-kestrel/internal/cloudconn"
	"github.com/kestrelai/otelcol-kestrel/internal/devcloud"
	"github.com/kestrelai/otelcol-kestrel/internal/testutil/cloudtest"
	"github.com/kestrelai/otelcol-kestrel/internal/testutil/relaytest"
)

// The node agent's configuration, as the chart renders it for the DaemonSet: the hubble
// receiver follows the node's Hubble server on its unix socket and the OTLP exporter sends
// the aggregates to the gateway.
const nodeConfig = `
receivers:
  hubble:
    endpoint: unix://%[1]s
    tls: {insecure: true}
    aggregation: {window: 200ms}
exporters:
  otlp_grpc:
    endpoint: %[2]s
    tls: {insecure: true}
service:
  pipelines:
    logs:
      receivers: [hubble]
      exporters: [otlp_grpc]
  telemetry:
    logs: {level: warn}
    metrics: {level: none}
`

// The gateway's: OTLP from the agents, merged by flow_merge, to the cloud.
const gatewayConfig = `
receivers:
  otlp/agents:
    protocols:
      grpc:
        endpoint: %[1]s
processors:
  flow_merge:
    window: %[2]s
exporters:
  kestrel:
    connection: kestrel_command
service:
  extensions: [kestrel_command]
  pipelines:
    logs:
      receivers: [otlp/agents]
      processors: [flow_merge]
      exporters: [kestrel]
  telemetry:
    logs: {level: warn}
    metrics: {level: none}
`

// pairFlows is what one node's Hubble server saw of one workload pair.
type pairFlows struct {
	src, dst string // Deployments in shop
	port     uint32
	n        int
}

// hubbleEvents returns the flows of a node, at times after at, with pod names and addresses
// of the node's own pods.
func hubbleEvents(node string, at time.Time, pairs []pairFlows) []*observerpb.GetFlowsResponse {
	ep := func(name string, id uint32) *flowpb.Endpoint {
		return &flowpb.Endpoint{
			Identity: id, Namespace: "shop", PodName: name + "-" + node,
			Labels:    []string{"k8s:app=" + name},
			Workloads: []*flowpb.Workload{{Name: name, Kind: "Deployment"}},
		}
	}
	var evs []*observerpb.GetFlowsResponse
	for i, p := range pairs {
		for j := range p.n {
			t := timestamppb.New(at.Add(time.Duration(len(evs)) * time.Millisecond))
			evs = append(evs, &observerpb.GetFlowsResponse{NodeName: node, Time: t, ResponseTypes: &observerpb.GetFlowsResponse_Flow{Flow: &flowpb.Flow{
				Time: t, Uuid: fmt.Sprintf("%s-%d-%d", node, i, j), NodeName: node,
				Verdict: flowpb.Verdict_FORWARDED, Type: flowpb.FlowType_L3_L4,
				IP:     &flowpb.IP{Source: fmt.Sprintf("10.%d.0.%d", len(node), i+1), Destination: "10.9.0.1", IpVersion: flowpb.IPVersion_IPv4},
				Source: ep(p.src, 1000+uint32(i)), Destination: ep(p.dst, 2000+uint32(i)),
				L4:      &flowpb.Layer4{Protocol: &flowpb.Layer4_TCP{TCP: &flowpb.TCP{SourcePort: 40000 + uint32(j), DestinationPort: p.port}}},
				IsReply: wrapperspb.Bool(false), TrafficDirection: flowpb.TrafficDirection_EGRESS,
				EventType: &flowpb.CiliumEventType{Type: 4},
			}}})
		}
	}
	return evs
}

// serveHubble serves a node's Hubble server (its observer API) on a unix socket, as Cilium's
// agent does at /var/run/cilium/hubble.sock.
func serveHubble(t *testing.T, events []*observerpb.GetFlowsResponse) string {
	t.Helper()
	// A short directory: socket paths are limited to about 100 bytes.
	dir, err := os.MkdirTemp("", "hubble") //nolint:usetesting // t.TempDir's path is too long for a socket
	require.NoError(t, err)
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	sock := filepath.Join(dir, "hubble.sock")
	lis, err := net.Listen("unix", sock)
	require.NoError(t, err)
	srv := grpc.NewServer()
	observerpb.RegisterObserverServer(srv, relaytest.New(events))
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(lis)
	}()
	t.Cleanup(func() {
		srv.Stop()
		<-done
	})
	return sock
}

// Node-agent mode: two node collectors follow their nodes' Hubble servers and send their
// aggregates over OTLP to one gateway, which merges them: the cloud receives each workload
// pair once per window, with exactly as many flows as the nodes saw.
func TestNodeModeMergesNodesExactly(t *testing.T) {
	cloud := cloudtest.Start(t, devcloud.Config{})
	const window = 5 * time.Second
	gateway := freeAddr(t)
	startWithConfig(t, withConnection(t, cloud, fmt.Sprintf(gatewayConfig, gateway, window)))

	at := time.Now().Add(time.Minute) // after the receivers' first "since"
	nodes := map[string][]pairFlows{
		"node-a": {{src: "frontend", dst: "cart", port: 8080, n: 7}, {src: "cart", dst: "redis", port: 6379, n: 3}},
		"node-b": {{src: "frontend", dst: "cart", port: 8080, n: 5}, {src: "checkout", dst: "payments", port: 443, n: 4}},
	}
	want := map[string]int64{}
	var total int64
	for _, pairs := range nodes {
		for _, p := range pairs {
			want[p.src+"->"+p.dst] += int64(p.n)
			total += int64(p.n)
		}
	}
	// Start the nodes just after a window began, so that both nodes' aggregates reach the
	// gateway within the same window.
	time.Sleep(time.Until(time.Now().Truncate(window).Add(window + 50*time.Millisecond)))
	for node, pairs := range nodes {
		sock := serveHubble(t, hubbleEvents(node, at, pairs))
		startWithConfig(t, fmt.Sprintf(nodeConfig, sock, gateway))
	}

	sum := func(ps []proto.Message) (n int64) {
		for _, m := range ps {
			n += m.(*cloudv1.Flow).GetCount()
		}
		return n
	}
	got := cloud.WaitPayloads(t, cloudconn.StreamFlows, &cloudv1.Flow{}, func(ps []proto.Message) bool { return sum(ps) >= total })
	require.Equal(t, total, sum(got), "the cloud counts exactly the flows the nodes saw")
	seen := map[string]int64{}
	for _, m := range got {
		f := m.(*cloudv1.Flow)
		k := f.GetSrc().GetName() + "->" + f.GetDst().GetName()
		_, dup := seen[k]
		assert.False(t, dup, "%s arrived more than once in the window", k)
		seen[k] = f.GetCount()
		if k == "frontend->cart" {
			// Both nodes' first flow of the pair is at at; node-a's last at at+6ms.
			assert.True(t, at.Equal(f.GetFirstSeen().AsTime()), "first seen %v", f.GetFirstSeen().AsTime())
			assert.True(t, at.Add(6*time.Millisecond).Equal(f.GetLastSeen().AsTime()), "last seen %v", f.GetLastSeen().AsTime())
		}
	}
	assert.Equal(t, want, seen)
}
