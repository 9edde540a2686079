package hubblereceiver

import (
	"os"
	"sync"
	"testing"

	observerpb "github.com/cilium/cilium/api/v1/observer"
	"github.com/stretchr/testify/require"

	"github.com/kestrelai/otelcol-kestrel/internal/testutil/relaytest"
	"github.com/kestrelai/otelcol-kestrel/receiver/hubblereceiver/internal/fixturegen"
)

var (
	fixtureOnce sync.Once
	fixture     []*observerpb.GetFlowsResponse
)

// loadFixture returns the committed replay fixture (read once per test binary; callers must
// not modify it).
func loadFixture(tb testing.TB) []*observerpb.GetFlowsResponse {
	tb.Helper()
	fixtureOnce.Do(func() {
		f, err := os.Open("testdata/flows.pb.gz")
		require.NoError(tb, err)
		defer f.Close()
		fixture, err = fixturegen.Read(f)
		require.NoError(tb, err)
	})
	require.NotEmpty(tb, fixture)
	return fixture
}

// The test Relay is shared with other components' tests (internal/testutil/relaytest).
type fakeRelay = relaytest.Relay

func newFakeRelay(events []*observerpb.GetFlowsResponse) *fakeRelay { return relaytest.New(events) }

var (
	serveRelay   = relaytest.Serve
	masked       = relaytest.Masked
	destPort     = relaytest.DestPort
	protocolName = relaytest.ProtocolName
)
