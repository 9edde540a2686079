package envoyalsreceiver

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	accesslogv3 "github.com/envoyproxy/go-control-plane/envoy/data/accesslog/v3"
	alsv3 "github.com/envoyproxy/go-control-plane/envoy/service/accesslog/v3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/otel/attribute"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/kestrelai/otelcol-kestrel/internal/schema"
	"github.com/kestrelai/otelcol-kestrel/internal/testutil"
	"github.com/kestrelai/otelcol-kestrel/receiver/envoyalsreceiver/internal/metadatatest"
)

func newTelemetry(t *testing.T) *componenttest.Telemetry {
	tt := componenttest.NewTelemetry()
	t.Cleanup(func() { require.NoError(t, tt.Shutdown(context.Background())) })
	return tt
}

// An Istio mesh: the frontend sidecar logs its outbound HTTP calls to cart, the cart sidecar
// logs the same calls inbound, and the payments-api sidecar logs a TCP connection to postgres.
func TestIstioMesh(t *testing.T) {
	tt := newTelemetry(t)
	sink := &consumertest.LogsSink{}
	cfg := testConfig()
	cfg.Headers.Request = append(cfg.Headers.Request, "authorization", "x-api-key")
	r, stop := startReceiver(t, cfg, sink, tt)
	addr := r.addr.String()

	frontend := dialEnvoy(t, addr, istioNode(t, "10.244.1.10", "frontend-7d9f8b6c5-x2x4k", "shop", ""))
	headers := map[string]string{
		"x-request-id":  "req-1",
		"authorization": "Bearer secret",
		"cookie":        "session=abc",
		"content-type":  "application/json",
		"x-api-key":     "k",
	}
	frontend.sendHTTP(t,
		httpEntry(0, "/api/v1/carts/42?token=abc", 200, headers),
		httpEntry(time.Second, "/api/v1/carts/43", 200, nil),
		httpEntry(2*time.Second, "/api/v1/carts/9f1c2a4e-7b3d-4c5e-8f9a-0b1c2d3e4f5a/items/", 200, nil),
	)
	frontend.sendHTTP(t, httpEntry(3*time.Second, "/api/v1/carts/44", 503, nil))

	// The server side: Istio's inbound cluster, the client known by its address.
	inbound := httpEntry(500*time.Millisecond, "/api/v1/carts/42", 200, nil)
	inbound.CommonProperties.UpstreamCluster = "inbound|8080||"
	inbound.CommonProperties.DownstreamRemoteAddress = sockAddr("10.244.1.10", 51000)
	inbound.CommonProperties.UpstreamRemoteAddress = sockAddr("10.244.2.11", 8080)
	cart := dialEnvoy(t, addr, istioNode(t, "10.244.2.11", "cart-5c8d7f9b4-q9wlp", "shop",
		"kubernetes://apis/apps/v1/namespaces/shop/deployments/cart"))
	cart.sendHTTP(t, inbound)

	payments := dialEnvoy(t, addr, istioNode(t, "10.244.5.10", "payments-api-84d5b7c6f-2lq7s", "payments", ""))
	tcp := func(at time.Duration, sent, received uint64) *accesslogv3.TCPAccessLogEntry {
		return &accesslogv3.TCPAccessLogEntry{
			CommonProperties: &accesslogv3.AccessLogCommon{
				DownstreamRemoteAddress:   sockAddr("10.244.5.10", 33000),
				UpstreamRemoteAddress:     sockAddr("10.244.6.10", 5432),
				UpstreamCluster:           "outbound|5432||postgres.payments.svc.cluster.local",
				StartTime:                 timestamppb.New(start.Add(at)),
				Duration:                  durationpb.New(time.Minute),
				UpstreamWireBytesSent:     sent,
				UpstreamWireBytesReceived: received,
				AccessLogType:             accesslogv3.AccessLogType_TcpConnectionEnd,
			},
			ConnectionProperties: &accesslogv3.ConnectionProperties{SentBytes: received, ReceivedBytes: sent},
		}
	}
	payments.sendTCP(t, tcp(0, 100, 2000), tcp(time.Minute, 50, 1000))

	require.Eventually(t, func() bool {
		return testutil.MetricSum(tt, "otelcol.envoy_access_log_receiver.entries") >= 7
	}, waitFor, tick)
	stop()

	require.Len(t, records(sink), 5)
	ok := find(t, sink, map[string]any{schema.AttrURLTemplate: "/api/v1/carts/:id", schema.AttrHTTPResponseStatusCode: int64(200), schema.AttrEnvoyDirection: "outbound"})
	assert.Equal(t, start, ts(ok), "event time: the first entry's start time")
	assert.Equal(t, map[string]any{
		schema.AttrAggregateCount:             int64(2),
		schema.AttrAggregateLastSeen:          "2026-03-01T12:00:01Z",
		schema.AttrSourceAddress:              "10.244.1.10",
		schema.AttrSourcePort:                 int64(40000),
		schema.AttrDestinationAddress:         "10.244.2.11",
		schema.AttrDestinationPort:            int64(8080),
		schema.AttrNetworkTransport:           "tcp",
		schema.AttrSourceNamespace:            "shop",
		schema.AttrSourceWorkloadKind:         "Deployment",
		schema.AttrSourceWorkloadName:         "frontend",
		schema.AttrDestNamespace:              "shop",
		schema.AttrDestService:                "cart",
		schema.AttrEnvoyNodeID:                "sidecar~10.244.1.10~frontend-7d9f8b6c5-x2x4k.shop~shop.svc.cluster.local",
		schema.AttrEnvoyLogName:               "envoy.access_loggers.http_grpc",
		schema.AttrEnvoyUpstreamCluster:       "outbound|8080||cart.shop.svc.cluster.local",
		schema.AttrEnvoyDirection:             "outbound",
		schema.AttrEnvoyDurationMs:            int64(24),
		schema.AttrEnvoyUpstreamBytesSent:     int64(200),
		schema.AttrEnvoyUpstreamBytesReceived: int64(2000),
		schema.AttrEnvoyAccessLogType:         "DownstreamEnd",
		schema.AttrEnvoyStreamID:              "stream-/api/v1/carts/42?token=abc",
		schema.AttrEnvoyAttemptCount:          int64(1),
		schema.AttrNetworkProtocolName:        "http",
		schema.AttrNetworkProtocolVersion:     "2",
		schema.AttrHTTPRequestMethod:          "GET",
		schema.AttrHTTPResponseStatusCode:     int64(200),
		schema.AttrURLPath:                    "/api/v1/carts/42",
		schema.AttrURLTemplate:                "/api/v1/carts/:id",
		schema.AttrURLScheme:                  "http",
		schema.AttrServerAddress:              "cart.shop.svc.cluster.local",
		schema.AttrUserAgentOriginal:          "Go-http-client/2.0",
		schema.AttrHTTPResponseBodySize:       int64(512),
		// Allowlisted, two of them redacted; cookie is not allowlisted, and set-cookie is not
		// on the response allowlist.
		"http.request.header.authorization": []any{"REDACTED"},
		"http.request.header.x-api-key":     []any{"REDACTED"},
		"http.request.header.content-type":  []any{"application/json"},
		"http.request.header.x-request-id":  []any{"req-1"},
		"http.response.header.content-type": []any{"application/json"},
	}, attrs(ok))
	// The UUID path is a different template: its own aggregate.
	uuid := find(t, sink, map[string]any{schema.AttrURLTemplate: "/api/v1/carts/:uuid/items"})
	assert.Equal(t, int64(1), attrs(uuid)[schema.AttrAggregateCount])
	failed := find(t, sink, map[string]any{schema.AttrHTTPResponseStatusCode: int64(503)})
	assert.Equal(t, plog.SeverityNumberWarn, failed.SeverityNumber())

	in := find(t, sink, map[string]any{schema.AttrEnvoyDirection: "inbound"})
	assert.Equal(t, "10.244.1.10", attrs(in)[schema.AttrSourceAddress], "the client of an inbound request is known by address")
	assert.NotContains(t, attrs(in), schema.AttrSourceWorkloadName)
	assert.Equal(t, "Deployment", attrs(in)[schema.AttrDestWorkloadKind], "from Istio's OWNER metadata")
	assert.Equal(t, "cart", attrs(in)[schema.AttrDestWorkloadName])
	assert.Equal(t, "shop", attrs(in)[schema.AttrDestNamespace])

	db := find(t, sink, map[string]any{schema.AttrDestService: "postgres"})
	assert.Equal(t, map[string]any{
		schema.AttrAggregateCount:             int64(2),
		schema.AttrAggregateLastSeen:          "2026-03-01T12:01:00Z",
		schema.AttrSourceAddress:              "10.244.5.10",
		schema.AttrSourcePort:                 int64(33000),
		schema.AttrDestinationAddress:         "10.244.6.10",
		schema.AttrDestinationPort:            int64(5432),
		schema.AttrNetworkTransport:           "tcp",
		schema.AttrSourceNamespace:            "payments",
		schema.AttrSourceWorkloadKind:         "Deployment",
		schema.AttrSourceWorkloadName:         "payments-api",
		schema.AttrDestNamespace:              "payments",
		schema.AttrDestService:                "postgres",
		schema.AttrEnvoyNodeID:                "sidecar~10.244.5.10~payments-api-84d5b7c6f-2lq7s.payments~payments.svc.cluster.local",
		schema.AttrEnvoyLogName:               "envoy.access_loggers.http_grpc",
		schema.AttrEnvoyUpstreamCluster:       "outbound|5432||postgres.payments.svc.cluster.local",
		schema.AttrEnvoyDirection:             "outbound",
		schema.AttrEnvoyDurationMs:            int64(120000),
		schema.AttrEnvoyUpstreamBytesSent:     int64(150),
		schema.AttrEnvoyUpstreamBytesReceived: int64(3000),
		schema.AttrEnvoyConnBytesSent:         int64(3000),
		schema.AttrEnvoyConnBytesReceived:     int64(150),
		schema.AttrEnvoyAccessLogType:         "TcpConnectionEnd",
	}, attrs(db))
	assert.Equal(t, int64(5), testutil.MetricSum(tt, "otelcol.envoy_access_log_receiver.entries", attribute.String("type", "http")))
	assert.Equal(t, int64(2), testutil.MetricSum(tt, "otelcol.envoy_access_log_receiver.entries", attribute.String("type", "tcp")))
	assert.Zero(t, testutil.MetricSum(tt, "otelcol.envoy_access_log_receiver.entries.dropped"))
}

// Hostile entries: huge and numerous headers are cut down to the allowlist and
// max_value_length, long paths are capped; a message with strings that are not UTF-8 cannot
// be decoded and is counted, and the receiver keeps serving.
func TestHostileInput(t *testing.T) {
	tt := newTelemetry(t)
	sink := &consumertest.LogsSink{}
	cfg := testConfig()
	cfg.MaxRecvMsgSizeMiB = 16
	r, stop := startReceiver(t, cfg, sink, tt)
	addr := r.addr.String()

	many := make(map[string]string, 10_000)
	for i := range 10_000 {
		many["x-h-"+strconv.Itoa(i)] = "v"
	}
	many["x-request-id"] = strings.Repeat("é", 1<<20) // 2 MiB
	many["traceparent"] = "00-abc"
	e := httpEntry(0, "/"+strings.Repeat("p", 100_000), 200, many)
	dialEnvoy(t, addr, istioNode(t, "10.244.1.10", "frontend-7d9f8b6c5-x2x4k", "shop", "")).sendHTTP(t, e)

	// Invalid UTF-8 in a string field, as a C++ Envoy could send it.
	bad, err := proto.Marshal(httpEntry(0, "/ok", 200, nil))
	require.NoError(t, err)
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	defer conn.Close()
	st, err := conn.NewStream(context.Background(), &alsv3.AccessLogService_ServiceDesc.Streams[0],
		alsv3.AccessLogService_StreamAccessLogs_FullMethodName, grpc.ForceCodecV2(rawCodec{}))
	require.NoError(t, err)
	path := protowire.AppendString(protowire.AppendTag(nil, 5, protowire.BytesType), "\xff\xfe") // request.path
	bad = protowire.AppendBytes(protowire.AppendTag(bad, 3, protowire.BytesType), path)          // merged into request
	entries := protowire.AppendBytes(protowire.AppendTag(nil, 1, protowire.BytesType), bad)
	msg := protowire.AppendTag(nil, 2, protowire.BytesType)
	msg = protowire.AppendBytes(msg, entries)
	require.NoError(t, st.SendMsg(rawMessage(msg)))
	require.Eventually(t, func() bool {
		return testutil.MetricSum(tt, "otelcol.envoy_access_log_receiver.messages.invalid") == 1
	}, waitFor, tick)

	// Still serving.
	dialEnvoy(t, addr, nil).sendHTTP(t, httpEntry(time.Second, "/after", 200, nil))
	require.Eventually(t, func() bool {
		return testutil.MetricSum(tt, "otelcol.envoy_access_log_receiver.entries") >= 2
	}, waitFor, tick)
	stop()

	big := find(t, sink, map[string]any{schema.AttrEnvoyNodeID: "sidecar~10.244.1.10~frontend-7d9f8b6c5-x2x4k.shop~shop.svc.cluster.local"})
	a := attrs(big)
	var headers []string
	for k := range a {
		if strings.HasPrefix(k, "http.request.header.") {
			headers = append(headers, k)
		}
	}
	assert.ElementsMatch(t, []string{"http.request.header.x-request-id", "http.request.header.traceparent"}, headers)
	id := a["http.request.header.x-request-id"].([]any)[0].(string)
	assert.Len(t, id, 256, "cut at max_value_length on a character boundary")
	assert.Len(t, a[schema.AttrURLPath], maxFieldLength)
	other := find(t, sink, map[string]any{schema.AttrURLPath: "/after"})
	assert.NotContains(t, attrs(other), schema.AttrEnvoyNodeID, "a stream without identifier")
}

// rawMessage and rawCodec send bytes as they are, to put invalid UTF-8 on the wire.
type rawMessage []byte

type rawCodec struct{}

func (rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	return mem.BufferSlice{mem.SliceBuffer(v.(rawMessage))}, nil
}
func (rawCodec) Unmarshal(mem.BufferSlice, any) error { return nil }
func (rawCodec) Name() string                         { return "proto" }

// Envoy-rate traffic: 10,000 entries per second for a second, from 4 sidecars, is read
// without a single drop.
func TestNoDropsAt10kEntriesPerSecond(t *testing.T) {
	tt := newTelemetry(t)
	sink := &consumertest.LogsSink{}
	r, stop := startReceiver(t, testConfig(), sink, tt)
	const streams, perMessage, messages = 4, 50, 50 // 10,000 entries
	done := make(chan error, streams)
	for s := range streams {
		e := dialEnvoy(t, r.addr.String(), istioNode(t, "10.244.1.1"+string(rune('0'+s)), "frontend-7d9f8b6c5-x2x4"+string(rune('a'+s)), "shop", ""))
		go func() {
			done <- func() error {
				tick := time.NewTicker(20 * time.Millisecond) // 50 messages in 1 s per stream
				defer tick.Stop()
				for m := range messages {
					batch := make([]*accesslogv3.HTTPAccessLogEntry, perMessage)
					for i := range batch {
						batch[i] = httpEntry(time.Duration(m*perMessage+i)*time.Millisecond, "/api/v1/items/"+string(rune('a'+i%26)), 200, nil)
					}
					<-tick.C
					if err := e.trySend(httpMessage(batch...)); err != nil {
						return err
					}
				}
				return nil
			}()
		}()
	}
	for range streams {
		require.NoError(t, <-done)
	}
	require.Eventually(t, func() bool {
		return testutil.MetricSum(tt, "otelcol.envoy_access_log_receiver.entries") == streams*perMessage*messages
	}, waitFor, tick)
	stop()
	assert.Zero(t, testutil.MetricSum(tt, "otelcol.envoy_access_log_receiver.entries.dropped"))
	var total int64
	for _, lr := range records(sink) {
		total += attrs(lr)[schema.AttrAggregateCount].(int64)
	}
	assert.Equal(t, int64(streams*perMessage*messages), total)
}

// Under overload (a full window while the previous one still waits for a slow pipeline) new
// keys are dropped and counted; Envoy's stream is never slowed down.
func TestOverloadDropsAndCounts(t *testing.T) {
	tt := newTelemetry(t)
	release := make(chan struct{})
	sink := &consumertest.LogsSink{}
	cfg := testConfig()
	cfg.Aggregation.MaxEntries = 10
	r, err := newReceiver(cfg, metadatatest.NewSettings(tt), blockingConsumer{sink: sink, release: release})
	require.NoError(t, err)
	require.NoError(t, r.Start(context.Background(), componenttest.NewNopHost()))
	e := dialEnvoy(t, r.addr.String(), nil)
	batch := make([]*accesslogv3.HTTPAccessLogEntry, 100)
	for i := range batch {
		batch[i] = httpEntry(0, "/p"+strings.Repeat("x", i), 200, nil) // 100 keys
	}
	e.sendHTTP(t, batch...)
	// Entries are counted as a message arrives, before they are aggregated; a stream's
	// messages are read in order, so once the next message is counted the batch is done.
	e.sendHTTP(t, httpEntry(0, "/last", 200, nil))
	require.Eventually(t, func() bool {
		return testutil.MetricSum(tt, "otelcol.envoy_access_log_receiver.entries") == 101
	}, waitFor, tick)
	// Window 1 went to the (blocked) pipeline, window 2 waits, window 3 is full; everything
	// else was dropped.
	dropped := func() int64 {
		return testutil.MetricSum(tt, "otelcol.envoy_access_log_receiver.entries.dropped", attribute.String("reason", "overload"))
	}
	assert.GreaterOrEqual(t, dropped(), int64(70))
	close(release)
	// Shutdown waits for the handler, so the last entry is counted one way or the other.
	require.NoError(t, r.Shutdown(context.Background()))
	assert.Equal(t, int64(101)-dropped(), int64(sink.LogRecordCount()))
}

// blockingConsumer is a pipeline that does not accept anything until release is closed.
type blockingConsumer struct {
	sink    *consumertest.LogsSink
	release chan struct{}
}

func (blockingConsumer) Capabilities() consumer.Capabilities { return consumer.Capabilities{} }

func (c blockingConsumer) ConsumeLogs(ctx context.Context, ld plog.Logs) error {
	<-c.release
	return c.sink.ConsumeLogs(ctx, ld)
}
