package hubblereceiver

import (
	"context"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componentstatus"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/config/configgrpc"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"google.golang.org/grpc"
	channelzpb "google.golang.org/grpc/channelz/grpc_channelz_v1"
	channelzsvc "google.golang.org/grpc/channelz/service"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"

	"github.com/kestrelai/otelcol-kestrel/internal/testutil"
)

// grpcDefaultMinTime is the MinTime of grpc-go's default keepalive enforcement policy (with
// PermitWithoutStream false), which Hubble Relay runs: it sets no keepalive option of its
// own. grpc-go does not export the value.
const grpcDefaultMinTime = 5 * time.Minute

// keepaliveScale divides every duration of TestIdleRelayKeepsTheConnection: the server's
// MinTime, the client's keepalive and the 10 minutes of idleness, so the test proves the same
// relation between the receiver's default keepalive and grpc-go's default policy in a
// fraction of the time. KESTREL_KEEPALIVE_SCALE=1 runs it in real time (10 minutes) against
// a server with no keepalive option at all:
//
//	KESTREL_KEEPALIVE_SCALE=1 go test -run TestIdleRelayKeepsTheConnection -timeout 20m ./receiver/hubblereceiver/
func keepaliveScale(t *testing.T) time.Duration {
	t.Helper()
	v := os.Getenv("KESTREL_KEEPALIVE_SCALE")
	if v == "" {
		return 20
	}
	n, err := strconv.Atoi(v)
	require.NoError(t, err, "KESTREL_KEEPALIVE_SCALE")
	// grpc-go raises a client keepalive below 10 s to 10 s, so the scaled 5 minutes must not
	// go below that.
	require.True(t, n >= 1 && grpcDefaultMinTime/time.Duration(n) >= 10*time.Second, "KESTREL_KEEPALIVE_SCALE must be in [1, 30]")
	return time.Duration(n)
}

// A Relay with grpc-go's default keepalive enforcement keeps an idle GetFlows stream of a
// receiver with the default configuration for 10 minutes: the receiver pings (so a dead
// Relay is still noticed), Relay accepts the pings, and the receiver never reconnects. The
// keepalive configgrpc defaults to (a ping every 10 s) is refused by the same server with
// GOAWAY too_many_pings, which shows the test can tell the two apart.
func TestIdleRelayKeepsTheConnection(t *testing.T) {
	scale := keepaliveScale(t)
	var policy []grpc.ServerOption
	if scale > 1 {
		policy = append(policy, grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: grpcDefaultMinTime / scale}))
	}
	def := createDefaultConfig().(*Config).Keepalive.Get()
	require.Equal(t, grpcDefaultMinTime, def.Time, "the default keepalive is what grpc-go's default policy allows")
	require.False(t, def.PermitWithoutStream, "grpc-go's default policy refuses pings without a stream")

	t.Run("default keepalive", func(t *testing.T) {
		t.Parallel()
		ka := configgrpc.KeepaliveClientConfig{Time: def.Time / scale, Timeout: def.Timeout / scale}
		relay, addr, tt, host := followIdleRelay(t, ka, policy)
		// 10 minutes, and half a ping interval more, so that the ping at 10 minutes is in.
		time.Sleep(10*time.Minute/scale + ka.Time/2)

		assert.Len(t, relay.Requests(), 1, "the receiver reconnected to an idle Relay")
		assert.Zero(t, testutil.MetricSum(tt, "otelcol.hubble_receiver.reconnects"))
		assert.NotContains(t, host.Statuses(), componentstatus.StatusRecoverableError)
		assert.GreaterOrEqual(t, keepalivesSent(t, addr), int64(2), "the receiver pinged Relay")
	})

	t.Run("10 s pings are refused", func(t *testing.T) {
		t.Parallel()
		ka := configgrpc.NewDefaultKeepaliveClientConfig()
		require.Equal(t, 10*time.Second, ka.Time)
		relay, _, tt, host := followIdleRelay(t, ka, policy)
		// The server counts a strike for every ping sooner than MinTime after the last one and
		// sends GOAWAY after the third strike: about 40 s.
		require.Eventually(t, func() bool {
			ev := host.Last()
			return ev != nil && ev.Err() != nil && strings.Contains(ev.Err().Error(), "too_many_pings")
		}, 2*time.Minute, 100*time.Millisecond, "no GOAWAY too_many_pings")
		require.Eventually(t, func() bool { return len(relay.Requests()) >= 2 }, waitFor, tick)
		assert.Positive(t, testutil.MetricSum(tt, "otelcol.hubble_receiver.reconnects"))
	})
}

// followIdleRelay starts a Relay that sends nothing, with the server options given, and a
// receiver following it with keepalive ka; it returns once the GetFlows stream is open.
func followIdleRelay(t *testing.T, ka configgrpc.KeepaliveClientConfig, opts []grpc.ServerOption) (*fakeRelay, string, *componenttest.Telemetry, *testutil.StatusHost) {
	t.Helper()
	relay := newFakeRelay(nil)
	_, addr := serveRelay(t, relay, "127.0.0.1:0", opts...)
	cfg := testConfig(addr)
	cfg.Keepalive = configoptional.Some(ka)
	tt := componenttest.NewTelemetry()
	t.Cleanup(func() { require.NoError(t, tt.Shutdown(context.Background())) })
	host := &testutil.StatusHost{}
	startReceiver(t, cfg, &consumertest.LogsSink{}, tt, host)
	require.Eventually(t, func() bool { return len(relay.Requests()) == 1 }, waitFor, tick)
	return relay, addr, tt, host
}

// keepalivesSent reads, from grpc-go's channelz, how many keepalive pings the client
// connections to addr have sent.
func keepalivesSent(t *testing.T, addr string) int64 {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := grpc.NewServer()
	channelzsvc.RegisterChannelzServiceToServer(srv)
	go func() { _ = srv.Serve(lis) }()
	defer srv.Stop()
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	defer conn.Close()
	cz := channelzpb.NewChannelzClient(conn)
	ctx := context.Background()
	top, err := cz.GetTopChannels(ctx, &channelzpb.GetTopChannelsRequest{})
	require.NoError(t, err)
	var sent int64
	for _, ch := range top.GetChannel() {
		if !strings.HasSuffix(ch.GetData().GetTarget(), addr) {
			continue
		}
		for _, ref := range ch.GetSubchannelRef() {
			sub, err := cz.GetSubchannel(ctx, &channelzpb.GetSubchannelRequest{SubchannelId: ref.GetSubchannelId()})
			require.NoError(t, err)
			for _, sref := range sub.GetSubchannel().GetSocketRef() {
				sock, err := cz.GetSocket(ctx, &channelzpb.GetSocketRequest{SocketId: sref.GetSocketId()})
				require.NoError(t, err)
				sent += sock.GetSocket().GetData().GetKeepAlivesSent()
			}
		}
	}
	return sent
}
