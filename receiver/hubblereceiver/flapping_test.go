package hubblereceiver

import (
	"context"
	"os"
	"strconv"
	"testing"

	flowpb "github.com/cilium/cilium/api/v1/flow"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componentstatus"
	"go.opentelemetry.io/collector/component/componenttest"
	"google.golang.org/protobuf/proto"

	cloudv1 "github.com/kestrelai/otelcol-kestrel/api/cloud/v1"
	"github.com/kestrelai/otelcol-kestrel/internal/cloudconn"
	"github.com/kestrelai/otelcol-kestrel/internal/testutil"
	"github.com/kestrelai/otelcol-kestrel/internal/testutil/pipelinetest"
)

// TestRelayFlapping: Hubble Relay goes away abruptly several times in the middle of its
// stream and comes back on the same address. Every flow reaches the cloud exactly once:
// sent (by the relays, resent overlap included) = accepted by the receiver; delivered (the
// counts of the cloud's Flow messages) = the fixture's flows; lost 0, duplicated 0.
func TestRelayFlapping(t *testing.T) { relayFlapping(t, 5) }

// TestSoakRelayFlapping is the longer run (make soak-sources): SOAK_RELAY_FLAPS flaps
// (40 in make soak-sources), each relay cut after fewer flows.
func TestSoakRelayFlapping(t *testing.T) {
	n := os.Getenv("SOAK_RELAY_FLAPS")
	if n == "" {
		t.Skip("SOAK_RELAY_FLAPS is not set: run make soak-sources")
	}
	flaps, err := strconv.Atoi(n)
	require.NoError(t, err)
	relayFlapping(t, flaps)
}

func relayFlapping(t *testing.T, flaps int) {
	p := pipelinetest.Start(t)
	events := loadFixture(t)
	all := countFlows(events, func(*flowpb.Flow) bool { return true })
	_, flows := expected(events, nil)
	perRelay := int(all) / (flaps + 1)
	require.Positive(t, perRelay)

	tt := componenttest.NewTelemetry()
	t.Cleanup(func() { require.NoError(t, tt.Shutdown(context.Background())) })
	relay := newFakeRelay(events)
	relay.PauseAfter = perRelay
	srv, addr := serveRelay(t, relay, "127.0.0.1:0")
	host := &testutil.StatusHost{}
	cfg := testConfig(addr)
	_, stop := startReceiver(t, cfg, p.Exporter, tt, host)

	accepted := func() int64 { return testutil.MetricSum(tt, "otelcol.hubble_receiver.flows") }
	var sent int64
	for i := range flaps {
		<-relay.Paused
		sent += int64(perRelay)
		require.Eventually(t, func() bool { return accepted() == sent }, waitFor, tick, "flap %d: the receiver took what the relay sent", i)
		srv.Stop() // abruptly, mid-stream
		relay = newFakeRelay(events)
		if i < flaps-1 {
			relay.PauseAfter = perRelay
		}
		srv, _ = serveRelay(t, relay, addr)
	}
	// The last relay sends everything after the since it was asked for.
	require.Eventually(t, func() bool { return len(relay.Requests()) > 0 }, waitFor, tick)
	since := relay.Requests()[0].Since.AsTime()
	sent += countFlows(events, func(f *flowpb.Flow) bool { return !f.Time.AsTime().Before(since) })
	require.Eventually(t, func() bool { return accepted() == sent }, waitFor, tick, "the receiver took what the last relay sent")
	took := accepted()
	duplicates := testutil.MetricSum(tt, "otelcol.hubble_receiver.flows", outcome("duplicate"))
	reconnects := testutil.MetricSum(tt, "otelcol.hubble_receiver.reconnects")
	stop()

	got := p.Cloud.WaitPayloads(t, cloudconn.StreamFlows, &cloudv1.Flow{}, func(ps []proto.Message) bool { return flowCount(ps) >= flows })
	delivered := flowCount(got)
	t.Logf("relay flapping, %d flaps: sent %d (resent overlap included), accepted %d (%d recognised as resent duplicates), delivered %d of %d (non-reply) flows, lost %d, duplicated %d, reconnects %d",
		flaps, sent, took, duplicates, delivered, flows, max(flows-delivered, 0), max(delivered-flows, 0), reconnects)
	assert.Equal(t, flows, delivered, "lost or duplicated flows")
	assert.Equal(t, sent, took)
	assert.GreaterOrEqual(t, reconnects, int64(flaps))
	assert.Contains(t, host.Statuses(), componentstatus.StatusRecoverableError, "each outage is visible")
	assert.Equal(t, componentstatus.StatusOK, host.Statuses()[len(host.Statuses())-1])
}
