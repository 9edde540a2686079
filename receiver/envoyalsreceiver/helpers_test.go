package envoyalsreceiver

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	accesslogv3 "github.com/envoyproxy/go-control-plane/envoy/data/accesslog/v3"
	alsv3 "github.com/envoyproxy/go-control-plane/envoy/service/accesslog/v3"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/plog"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/kestrelai/otelcol-kestrel/internal/schema"
	"github.com/kestrelai/otelcol-kestrel/internal/testutil"
	"github.com/kestrelai/otelcol-kestrel/receiver/envoyalsreceiver/internal/metadatatest"
)

const (
	waitFor = 20 * time.Second
	tick    = 5 * time.Millisecond
)

var start = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func testConfig() *Config {
	cfg := createDefaultConfig().(*Config)
	cfg.NetAddr.Endpoint = "127.0.0.1:0"
	cfg.Aggregation.Window = time.Hour // tests flush by shutting down
	return cfg
}

// startReceiver starts a receiver; the returned stop shuts it down once (also at test end).
func startReceiver(tb testing.TB, cfg *Config, sink *consumertest.LogsSink, tt *componenttest.Telemetry) (*alsReceiver, func()) {
	tb.Helper()
	require.NoError(tb, cfg.Validate())
	r, err := newReceiver(cfg, metadatatest.NewSettings(tt), sink)
	require.NoError(tb, err)
	require.NoError(tb, r.Start(context.Background(), componenttest.NewNopHost()))
	var once sync.Once
	stop := func() { once.Do(func() { require.NoError(tb, r.Shutdown(context.Background())) }) }
	tb.Cleanup(stop)
	return r, stop
}

// envoy is an ALS client exactly as Envoy uses it: one stream, the identifier on the first
// message only, batches of entries.
type envoy struct {
	stream alsv3.AccessLogService_StreamAccessLogsClient
	id     *alsv3.StreamAccessLogsMessage_Identifier
}

func dialEnvoy(tb testing.TB, addr string, id *alsv3.StreamAccessLogsMessage_Identifier) *envoy {
	tb.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(tb, err)
	tb.Cleanup(func() { _ = conn.Close() })
	st, err := alsv3.NewAccessLogServiceClient(conn).StreamAccessLogs(context.Background())
	require.NoError(tb, err)
	return &envoy{stream: st, id: id}
}

func (e *envoy) send(tb testing.TB, msg *alsv3.StreamAccessLogsMessage) {
	tb.Helper()
	require.NoError(tb, e.trySend(msg))
}

// trySend is send for goroutines other than the test's, which must not call FailNow.
func (e *envoy) trySend(msg *alsv3.StreamAccessLogsMessage) error {
	msg.Identifier, e.id = e.id, nil
	return e.stream.Send(msg)
}

func (e *envoy) sendHTTP(tb testing.TB, entries ...*accesslogv3.HTTPAccessLogEntry) {
	tb.Helper()
	e.send(tb, httpMessage(entries...))
}

func httpMessage(entries ...*accesslogv3.HTTPAccessLogEntry) *alsv3.StreamAccessLogsMessage {
	return &alsv3.StreamAccessLogsMessage{LogEntries: &alsv3.StreamAccessLogsMessage_HttpLogs{
		HttpLogs: &alsv3.StreamAccessLogsMessage_HTTPAccessLogEntries{LogEntry: entries},
	}}
}

func (e *envoy) sendTCP(tb testing.TB, entries ...*accesslogv3.TCPAccessLogEntry) {
	tb.Helper()
	e.send(tb, &alsv3.StreamAccessLogsMessage{LogEntries: &alsv3.StreamAccessLogsMessage_TcpLogs{
		TcpLogs: &alsv3.StreamAccessLogsMessage_TCPAccessLogEntries{LogEntry: entries},
	}})
}

// istioNode is the node an Istio sidecar reports.
func istioNode(tb testing.TB, ip, pod, ns, owner string) *alsv3.StreamAccessLogsMessage_Identifier {
	tb.Helper()
	md := map[string]any{"CLUSTER_ID": "Kubernetes", "ISTIO_VERSION": "1.24.2"}
	if owner != "" {
		md["OWNER"] = owner
		md["NAME"] = pod
		md["NAMESPACE"] = ns
	}
	s, err := structpb.NewStruct(md)
	require.NoError(tb, err)
	return &alsv3.StreamAccessLogsMessage_Identifier{
		Node: &corev3.Node{
			Id:       "sidecar~" + ip + "~" + pod + "." + ns + "~" + ns + ".svc.cluster.local",
			Cluster:  "frontend." + ns,
			Metadata: s,
		},
		LogName: "envoy.access_loggers.http_grpc",
	}
}

func sockAddr(ip string, port uint32) *corev3.Address {
	return &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
		Address: ip, PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: port},
	}}}
}

// httpEntry is an entry of a client-side (outbound) sidecar.
func httpEntry(at time.Duration, path string, status uint32, headers map[string]string) *accesslogv3.HTTPAccessLogEntry {
	return &accesslogv3.HTTPAccessLogEntry{
		CommonProperties: &accesslogv3.AccessLogCommon{
			DownstreamRemoteAddress:     sockAddr("10.244.1.10", 40000+uint32(at/time.Millisecond)%20000),
			UpstreamRemoteAddress:       sockAddr("10.244.2.11", 8080),
			UpstreamCluster:             "outbound|8080||cart.shop.svc.cluster.local",
			StartTime:                   timestamppb.New(start.Add(at)),
			Duration:                    durationpb.New(12 * time.Millisecond),
			UpstreamWireBytesSent:       100,
			UpstreamWireBytesReceived:   1000,
			AccessLogType:               accesslogv3.AccessLogType_DownstreamEnd,
			StreamId:                    "stream-" + path,
			UpstreamRequestAttemptCount: 1,
		},
		ProtocolVersion: accesslogv3.HTTPAccessLogEntry_HTTP2,
		Request: &accesslogv3.HTTPRequestProperties{
			RequestMethod:    corev3.RequestMethod_GET,
			Scheme:           "http",
			Authority:        "cart.shop.svc.cluster.local:8080",
			Path:             path,
			UserAgent:        "Go-http-client/2.0",
			RequestBodyBytes: 0,
			RequestHeaders:   headers,
		},
		Response: &accesslogv3.HTTPResponseProperties{
			ResponseCode:      wrapperspb.UInt32(status),
			ResponseBodyBytes: 512,
			ResponseHeaders:   map[string]string{"content-type": "application/json", "set-cookie": "session=abc"},
		},
	}
}

func records(sink *consumertest.LogsSink) []plog.LogRecord {
	return slices.Collect(testutil.LogRecords(sink.AllLogs()...))
}

// find returns the only record whose attributes include want.
func find(t *testing.T, sink *consumertest.LogsSink, want map[string]any) plog.LogRecord {
	t.Helper()
	var found []plog.LogRecord
	for _, lr := range records(sink) {
		m := lr.Attributes().AsRaw()
		match := lr.EventName() == schema.EventL7AccessLog
		for k, v := range want {
			match = match && m[k] == v
		}
		if match {
			found = append(found, lr)
		}
	}
	require.Len(t, found, 1, "records matching %v", want)
	return found[0]
}

func attrs(lr plog.LogRecord) map[string]any { return lr.Attributes().AsRaw() }

func ts(lr plog.LogRecord) time.Time { return lr.Timestamp().AsTime() }
