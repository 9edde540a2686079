package e2e

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	observerpb "github.com/cilium/cilium/api/v1/observer"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	cloudv1 "github.com/kestrelai/otelcol-kestrel/api/cloud/v1"
	"github.com/kestrelai/otelcol-kestrel/internal/cloudconn"
	"github.com/kestrelai/otelcol-kestrel/internal/devcloud"
	"github.com/kestrelai/otelcol-kestrel/internal/testutil"
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
	relaytest.ServeOn(t, relaytest.New(events), lis)
	return sock
}

// Node-agent mode: two node collectors follow their nodes' Hubble servers and send their
// aggregates over OTLP to one gateway, which merges them: the cloud receives each workload
// pair once per window, with exactly as many flows as the nodes saw.
func TestNodeModeMergesNodesExactly(t *testing.T) {
	cloud := cloudtest.Start(t, devcloud.Config{})
	const window = 5 * time.Second
	gateway := testutil.FreeAddr(t)
	startWithConfig(t, withConnection(t, cloud, fmt.Sprintf(gatewayConfig, gateway, window)))

	at := time.Now().Add(time.Minute) // after the receivers' first "since"
	nodes := map[string][]relaytest.Pair{
		"node-a": {{Src: "frontend", Dst: "cart", Port: 8080, N: 7}, {Src: "cart", Dst: "redis", Port: 6379, N: 3}},
		"node-b": {{Src: "frontend", Dst: "cart", Port: 8080, N: 5}, {Src: "checkout", Dst: "payments", Port: 443, N: 4}},
	}
	want := map[string]int64{}
	var total int64
	for _, pairs := range nodes {
		for _, p := range pairs {
			want[p.Src+"->"+p.Dst] += int64(p.N)
			total += int64(p.N)
		}
	}
	// Start the nodes just after a window began, so that both nodes' aggregates reach the
	// gateway within the same window.
	time.Sleep(time.Until(time.Now().Truncate(window).Add(window + 50*time.Millisecond)))
	for node, pairs := range nodes {
		sock := serveHubble(t, relaytest.PairEvents(node, at, pairs))
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
