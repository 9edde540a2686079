package envoyalsreceiver

import (
	"context"
	"testing"
	"time"

	accesslogv3 "github.com/envoyproxy/go-control-plane/envoy/data/accesslog/v3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	cloudv1 "github.com/kestrelai/otelcol-kestrel/api/cloud/v1"
	"github.com/kestrelai/otelcol-kestrel/internal/cloudconn"
	"github.com/kestrelai/otelcol-kestrel/internal/testutil"
	"github.com/kestrelai/otelcol-kestrel/internal/testutil/pipelinetest"
	"github.com/kestrelai/otelcol-kestrel/receiver/envoyalsreceiver/internal/metadatatest"
)

// Envoy → receiver → kestrel exporter → kestrel_command extension → kestrel-devcloud: the
// aggregated entries arrive as cloud.v1.L7AccessLog messages on StreamFlows.
func TestEndToEndAccessLogsReachCloud(t *testing.T) {
	p := pipelinetest.Start(t)
	tt := componenttest.NewTelemetry()
	t.Cleanup(func() { require.NoError(t, tt.Shutdown(context.Background())) })
	cfg := testConfig()
	cfg.Aggregation.Window = 100 * time.Millisecond
	cfg.Headers.Request = append(cfg.Headers.Request, "authorization")
	r, err := newReceiver(cfg, metadatatest.NewSettings(tt), p.Exporter)
	require.NoError(t, err)
	require.NoError(t, r.Start(context.Background(), componenttest.NewNopHost()))
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			require.NoError(t, r.Shutdown(context.Background()))
		}
	}
	t.Cleanup(stop)

	frontend := dialEnvoy(t, r.addr.String(), istioNode(t, "10.244.1.10", "frontend-7d9f8b6c5-x2x4k", "shop", ""))
	var batch []*accesslogv3.HTTPAccessLogEntry
	for i := range 40 {
		batch = append(batch, httpEntry(time.Duration(i)*time.Second, "/api/v1/carts/"+string(rune('0'+i%10)), 200,
			map[string]string{"x-request-id": "r", "authorization": "Bearer secret"}))
	}
	denied := httpEntry(time.Minute, "/admin", 403, nil)
	denied.CommonProperties.ResponseFlags = &accesslogv3.ResponseFlags{UnauthorizedDetails: &accesslogv3.ResponseFlags_Unauthorized{}}
	batch = append(batch, denied)
	frontend.sendHTTP(t, batch...)
	payments := dialEnvoy(t, r.addr.String(), istioNode(t, "10.244.5.10", "payments-api-84d5b7c6f-2lq7s", "payments", ""))
	payments.sendTCP(t, &accesslogv3.TCPAccessLogEntry{
		CommonProperties: &accesslogv3.AccessLogCommon{
			DownstreamRemoteAddress: sockAddr("10.244.5.10", 33000),
			UpstreamRemoteAddress:   sockAddr("10.244.6.10", 5432),
			UpstreamCluster:         "outbound|5432||postgres.payments.svc.cluster.local",
			StartTime:               timestamppb.New(start),
			Duration:                durationpb.New(time.Minute),
			AccessLogType:           accesslogv3.AccessLogType_TcpConnectionEnd,
		},
		ConnectionProperties: &accesslogv3.ConnectionProperties{SentBytes: 4096, ReceivedBytes: 1024},
	})
	require.Eventually(t, func() bool {
		return testutil.MetricSum(tt, "otelcol.envoy_access_log_receiver.entries") >= 42
	}, waitFor, tick)
	stop()

	count := func(ps []proto.Message) int64 {
		var n int64
		for _, m := range ps {
			n += m.(*cloudv1.L7AccessLog).Count
		}
		return n
	}
	got := p.Cloud.WaitPayloads(t, cloudconn.StreamFlows, &cloudv1.L7AccessLog{}, func(ps []proto.Message) bool { return count(ps) >= 42 })
	require.Equal(t, int64(42), count(got))
	byPath := map[string]*cloudv1.L7AccessLog{}
	for _, m := range got {
		l := m.(*cloudv1.L7AccessLog)
		byPath[l.GetHttpData().GetPath()] = l
	}

	carts := byPath["/api/v1/carts/0"]
	require.NotNil(t, carts, "the first entry's path")
	want := &cloudv1.L7AccessLog{
		Timestamp:     timestamppb.New(start),
		Source:        &cloudv1.L7Endpoint{Ip: "10.244.1.10", Port: 40000, Namespace: "shop", Kind: "Deployment", Name: "frontend"},
		Destination:   &cloudv1.L7Endpoint{Ip: "10.244.2.11", Port: 8080, Namespace: "shop", Kind: "Service", Name: "cart", ServiceName: "cart"},
		Protocol:      "TCP",
		L7Protocol:    cloudv1.L7ProtocolType_L7_PROTOCOL_HTTP,
		DurationMs:    40 * 12,
		BytesSent:     40 * 100,
		BytesReceived: 40 * 1000,
		Allowed:       true,
		NodeId:        "sidecar~10.244.1.10~frontend-7d9f8b6c5-x2x4k.shop~shop.svc.cluster.local",
		ClusterName:   "outbound|8080||cart.shop.svc.cluster.local",
		Count:         40,
		FirstSeen:     timestamppb.New(start),
		LastSeen:      timestamppb.New(start.Add(39 * time.Second)),
		HttpData: &cloudv1.HTTPAccessLogData{
			Method:                      "GET",
			Path:                        "/api/v1/carts/0",
			Version:                     "2.0",
			Host:                        "cart.shop.svc.cluster.local",
			UserAgent:                   "Go-http-client/2.0",
			RequestHeaders:              map[string]string{"x-request-id": "r", "authorization": "REDACTED"},
			ResponseCode:                200,
			ResponseHeaders:             map[string]string{"content-type": "application/json"},
			ResponseSize:                512,
			AccessLogType:               "DownstreamEnd",
			StreamId:                    "stream-/api/v1/carts/0",
			UpstreamRequestAttemptCount: 1,
		},
	}
	assert.True(t, proto.Equal(want, carts), "got %s", prototext.Format(carts))

	admin := byPath["/admin"]
	require.NotNil(t, admin)
	assert.False(t, admin.Allowed, "UAEX")
	assert.Equal(t, []string{"UAEX"}, admin.GetHttpData().GetResponseFlags())

	db := byPath[""]
	require.NotNil(t, db)
	assert.Equal(t, cloudv1.L7ProtocolType_L7_PROTOCOL_TCP, db.L7Protocol)
	assert.Equal(t, &cloudv1.TCPAccessLogData{ConnectionState: "CLOSED", SentBytes: 4096, ReceivedBytes: 1024, AccessLogType: "TcpConnectionEnd"}, db.TcpData)
	assert.Equal(t, &cloudv1.L7Endpoint{Ip: "10.244.6.10", Port: 5432, Namespace: "payments", Kind: "Service", Name: "postgres", ServiceName: "postgres"}, db.Destination)
	assert.Equal(t, int64(60000), db.DurationMs)
}
