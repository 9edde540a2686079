package envoyalsreceiver

import (
	"context"
	"strings"
	"testing"
	"time"

	accesslogv3 "github.com/envoyproxy/go-control-plane/envoy/data/accesslog/v3"
	alsv3 "github.com/envoyproxy/go-control-plane/envoy/service/accesslog/v3"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/receiver/receivertest"
	"google.golang.org/protobuf/proto"

	"github.com/kestrelai/otelcol-kestrel/internal/testutil"
	"github.com/kestrelai/otelcol-kestrel/receiver/envoyalsreceiver/internal/metadata"
)

// FuzzAccessLogConversion feeds arbitrary StreamAccessLogsMessages through the receiver's
// identification, conversion and aggregation and the exporter's mapping: nothing may panic,
// every record must be accounted for, and every cloud.v1 payload must marshal.
func FuzzAccessLogConversion(f *testing.F) {
	seeds := []*alsv3.StreamAccessLogsMessage{
		{
			Identifier: istioNode(f, "10.244.1.10", "frontend-7d9f8b6c5-x2x4k", "shop", "kubernetes://apis/apps/v1/namespaces/shop/deployments/frontend"),
			LogEntries: &alsv3.StreamAccessLogsMessage_HttpLogs{HttpLogs: &alsv3.StreamAccessLogsMessage_HTTPAccessLogEntries{
				LogEntry: []*accesslogv3.HTTPAccessLogEntry{
					httpEntry(0, "/api/v1/carts/42?x=1", 200, map[string]string{"x-request-id": "a", "authorization": "b"}),
					httpEntry(time.Second, "/"+strings.Repeat("1/", 10), 503, nil),
				},
			}},
		},
		{LogEntries: &alsv3.StreamAccessLogsMessage_TcpLogs{TcpLogs: &alsv3.StreamAccessLogsMessage_TCPAccessLogEntries{
			LogEntry: []*accesslogv3.TCPAccessLogEntry{{
				CommonProperties: &accesslogv3.AccessLogCommon{UpstreamCluster: "BlackHoleCluster", ResponseFlags: &accesslogv3.ResponseFlags{UpstreamConnectionFailure: true}},
			}},
		}}},
	}
	for _, s := range seeds {
		b, err := proto.Marshal(s)
		require.NoError(f, err)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		msg := &alsv3.StreamAccessLogsMessage{}
		if proto.Unmarshal(data, msg) != nil {
			return
		}
		next := testutil.AccountingConsumer(t)
		r, err := newReceiver(createDefaultConfig().(*Config), receivertest.NewNopSettings(metadata.Type), next)
		require.NoError(t, err)
		r.receive(context.Background(), &streamState{}, msg)
		r.window.Flush(context.Background())
	})
}
