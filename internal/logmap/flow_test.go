package logmap

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	cloudv1 "github.com/kestrelai/otelcol-kestrel/api/cloud/v1"
	"github.com/kestrelai/otelcol-kestrel/internal/schema"
)

// flowRecord is a complete kestrelai.network.flow record as the hubble receiver emits it.
func flowRecord() rec {
	return rec{
		eventName: schema.EventNetworkFlow,
		attrs: map[string]any{
			schema.AttrAggregateCount:         int64(12),
			schema.AttrAggregateLastSeen:      "2026-03-01T12:00:29.5Z",
			schema.AttrSourceAddress:          "10.244.1.10",
			schema.AttrDestinationAddress:     "10.244.2.11",
			schema.AttrDestinationPort:        int64(8080),
			schema.AttrNetworkTransport:       "tcp",
			schema.AttrNetworkType:            "ipv4",
			schema.AttrSourceNamespace:        "shop",
			schema.AttrSourceWorkloadKind:     "Deployment",
			schema.AttrSourceWorkloadName:     "frontend",
			schema.AttrCiliumSourceIdentity:   int64(12001),
			schema.AttrCiliumSourceLabels:     []any{"k8s:app=frontend", "k8s:io.kubernetes.pod.namespace=shop"},
			schema.AttrDestNamespace:          "shop",
			schema.AttrDestWorkloadKind:       "Deployment",
			schema.AttrDestWorkloadName:       "cart",
			schema.AttrCiliumDestIdentity:     int64(12002),
			schema.AttrCiliumDestLabels:       []any{"k8s:app=cart"},
			schema.AttrCiliumVerdict:          "FORWARDED",
			schema.AttrCiliumTrafficDirection: "EGRESS",
			schema.AttrCiliumEgressAllowedBy: []any{map[string]any{
				schema.PolicyName: "frontend-egress", schema.PolicyNamespace: "shop", schema.PolicyKind: "CiliumNetworkPolicy",
				schema.PolicyRevision: int64(7), schema.PolicyLabels: []any{"k8s:io.cilium.k8s.policy.name=frontend-egress"},
			}},
			schema.AttrCiliumIngressAllowedBy: []any{map[string]any{schema.PolicyName: "cart-ingress", schema.PolicyNamespace: "shop"}},
		},
		ts: time.Date(2026, 3, 1, 12, 0, 1, 0, time.UTC),
	}
}

func flowPayload() *cloudv1.Flow {
	return &cloudv1.Flow{
		SrcIp:     "10.244.1.10",
		DstIp:     "10.244.2.11",
		Src:       &cloudv1.Endpoint{Ns: "shop", Kind: "Deployment", Name: "frontend", Labels: []string{"k8s:app=frontend", "k8s:io.kubernetes.pod.namespace=shop"}},
		Dst:       &cloudv1.Endpoint{Ns: "shop", Kind: "Deployment", Name: "cart", Labels: []string{"k8s:app=cart"}},
		Direction: "EGRESS",
		Port:      8080,
		Protocol:  "TCP",
		Allowed:   true,
		Count:     12,
		FirstSeen: ts("2026-03-01T12:00:01Z"),
		LastSeen:  ts("2026-03-01T12:00:29.5Z"),
		EgressAllowedBy: []*cloudv1.Policy{{
			Name: "frontend-egress", Namespace: "shop", Kind: "CiliumNetworkPolicy", Revision: 7,
			Labels: []string{"k8s:io.cilium.k8s.policy.name=frontend-egress"},
		}},
		IngressAllowedBy: []*cloudv1.Policy{{Name: "cart-ingress", Namespace: "shop"}},
	}
}

func TestFlow(t *testing.T) {
	tests := []struct {
		name   string
		edit   func(a map[string]any)
		want   func(f *cloudv1.Flow)
		reason Reason
		detail string
	}{
		{name: "complete"},
		{
			name: "dropped",
			edit: func(a map[string]any) {
				a[schema.AttrCiliumVerdict] = "DROPPED"
				a[schema.AttrCiliumDropReason] = "POLICY_DENIED"
			},
			want: func(f *cloudv1.Flow) { f.Allowed = false },
		},
		{
			name: "pod, unmanaged and identity-only endpoints",
			edit: func(a map[string]any) {
				delete(a, schema.AttrSourceWorkloadKind)
				delete(a, schema.AttrSourceWorkloadName)
				a[schema.AttrSourcePod] = "debug"
				delete(a, schema.AttrDestWorkloadKind)
				delete(a, schema.AttrDestWorkloadName)
				delete(a, schema.AttrDestNamespace)
				a[schema.AttrCiliumDestLabels] = []any{"reserved:world"}
			},
			want: func(f *cloudv1.Flow) {
				f.Src.Kind, f.Src.Name = "Pod", "debug"
				f.Dst = &cloudv1.Endpoint{Kind: "Unmanaged", Name: "reserved:world", Labels: []string{"reserved:world"}}
			},
		},
		{
			name: "identity only and nothing at all",
			edit: func(a map[string]any) {
				for _, k := range []string{schema.AttrSourceNamespace, schema.AttrSourceWorkloadKind, schema.AttrSourceWorkloadName, schema.AttrCiliumSourceLabels,
					schema.AttrDestNamespace, schema.AttrDestWorkloadKind, schema.AttrDestWorkloadName, schema.AttrCiliumDestLabels, schema.AttrCiliumDestIdentity} {
					delete(a, k)
				}
			},
			want: func(f *cloudv1.Flow) {
				f.Src = &cloudv1.Endpoint{Kind: "Unknown", Name: "identity-12001"}
				f.Dst = &cloudv1.Endpoint{Kind: "Unknown", Name: "unknown"}
			},
		},
		{
			name: "icmpv6 without port, direction or aggregate attributes",
			edit: func(a map[string]any) {
				a[schema.AttrNetworkTransport] = "icmp"
				a[schema.AttrNetworkType] = "ipv6"
				delete(a, schema.AttrDestinationPort)
				delete(a, schema.AttrCiliumTrafficDirection)
				delete(a, schema.AttrAggregateCount)
				delete(a, schema.AttrAggregateLastSeen)
			},
			want: func(f *cloudv1.Flow) {
				f.Protocol, f.Port, f.Direction = "ICMPv6", 0, "TRAFFIC_DIRECTION_UNKNOWN"
				f.Count, f.LastSeen = 1, f.FirstSeen
			},
		},
		{name: "icmpv4", edit: func(a map[string]any) { a[schema.AttrNetworkTransport] = "icmp" }, want: func(f *cloudv1.Flow) { f.Protocol = "ICMPv4" }},
		{name: "udp", edit: func(a map[string]any) { a[schema.AttrNetworkTransport] = "udp" }, want: func(f *cloudv1.Flow) { f.Protocol = "UDP" }},
		{name: "unknown transport", edit: func(a map[string]any) { a[schema.AttrNetworkTransport] = "quic" }, want: func(f *cloudv1.Flow) { f.Protocol = "" }},
		{name: "no verdict", edit: func(a map[string]any) { delete(a, schema.AttrCiliumVerdict) }, reason: ReasonMissingAttribute, detail: schema.AttrCiliumVerdict},
		{name: "port out of range", edit: func(a map[string]any) { a[schema.AttrDestinationPort] = int64(70000) }, reason: ReasonInvalidAttribute, detail: schema.AttrDestinationPort},
		{name: "zero count", edit: func(a map[string]any) { a[schema.AttrAggregateCount] = int64(0) }, reason: ReasonInvalidAttribute, detail: schema.AttrAggregateCount},
		{name: "bad last seen", edit: func(a map[string]any) { a[schema.AttrAggregateLastSeen] = "yesterday" }, reason: ReasonInvalidAttribute, detail: schema.AttrAggregateLastSeen},
		{name: "labels not strings", edit: func(a map[string]any) { a[schema.AttrCiliumSourceLabels] = []any{int64(1)} }, reason: ReasonInvalidAttribute, detail: schema.AttrCiliumSourceLabels},
		{name: "policy not a map", edit: func(a map[string]any) { a[schema.AttrCiliumEgressAllowedBy] = []any{"x"} }, reason: ReasonInvalidAttribute, detail: schema.AttrCiliumEgressAllowedBy},
		{
			name:   "policy with a stray key",
			edit:   func(a map[string]any) { a[schema.AttrCiliumIngressAllowedBy] = []any{map[string]any{"rule": "x"}} },
			reason: ReasonInvalidAttribute, detail: schema.AttrCiliumIngressAllowedBy,
		},
		{
			name: "negative revision",
			edit: func(a map[string]any) {
				a[schema.AttrCiliumIngressAllowedBy] = []any{map[string]any{schema.PolicyRevision: int64(-1)}}
			},
			reason: ReasonInvalidAttribute, detail: schema.AttrCiliumIngressAllowedBy,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := flowRecord()
			if tc.edit != nil {
				tc.edit(r.attrs)
			}
			res := NewMapper(fixedNow).Map(logsOf(t, r))
			if tc.reason != "" {
				require.Empty(t, res.Items)
				require.Equal(t, []Drop{{EventName: schema.EventNetworkFlow, Reason: tc.reason, Count: 1, Detail: tc.detail}}, res.Drops)
				return
			}
			require.Empty(t, res.Drops)
			want := flowPayload()
			if tc.want != nil {
				tc.want(want)
			}
			assertPayloadsEqual(t, []proto.Message{want}, payloads(res.Items))
			assert.Equal(t, schema.EventNetworkFlow, res.Items[0].EventName)
		})
	}
}

// httpRecord is an outbound HTTP access-log aggregate as the envoy_access_log receiver emits it.
func httpRecord() rec {
	return rec{
		eventName: schema.EventL7AccessLog,
		attrs: map[string]any{
			schema.AttrAggregateCount:                            int64(3),
			schema.AttrAggregateLastSeen:                         "2026-03-01T12:00:20Z",
			schema.AttrSourceAddress:                             "10.244.1.10",
			schema.AttrSourcePort:                                int64(51234),
			schema.AttrDestinationAddress:                        "10.244.2.11",
			schema.AttrDestinationPort:                           int64(8080),
			schema.AttrSourceNamespace:                           "shop",
			schema.AttrSourceWorkloadKind:                        "Deployment",
			schema.AttrSourceWorkloadName:                        "frontend",
			schema.AttrDestNamespace:                             "shop",
			schema.AttrDestService:                               "cart",
			schema.AttrNetworkTransport:                          "tcp",
			schema.AttrNetworkProtocolName:                       "http",
			schema.AttrNetworkProtocolVersion:                    "2",
			schema.AttrHTTPRequestMethod:                         "GET",
			schema.AttrURLPath:                                   "/api/v1/carts/42",
			schema.AttrURLTemplate:                               "/api/v1/carts/:id",
			schema.AttrServerAddress:                             "cart.shop.svc.cluster.local",
			schema.AttrUserAgentOriginal:                         "curl/8.5.0",
			schema.AttrHTTPResponseStatusCode:                    int64(200),
			schema.AttrHTTPRequestBodySize:                       int64(10),
			schema.AttrHTTPResponseBodySize:                      int64(512),
			schema.AttrHTTPRequestHeaderPrefix + "x-request-id":  []any{"abc"},
			schema.AttrHTTPRequestHeaderPrefix + "authorization": []any{"REDACTED"},
			schema.AttrHTTPRequestHeaderPrefix + "referer":       []any{"https://shop.example/"},
			schema.AttrHTTPResponseHeaderPrefix + "content-type": []any{"application/json", "charset=utf-8"},
			schema.AttrEnvoyNodeID:                               "sidecar~10.244.1.10~frontend-7d9f8b6c5-x2x4k.shop~shop.svc.cluster.local",
			schema.AttrEnvoyUpstreamCluster:                      "outbound|8080||cart.shop.svc.cluster.local",
			schema.AttrEnvoyDirection:                            "outbound",
			schema.AttrEnvoyResponseFlags:                        []any{"URX"},
			schema.AttrEnvoyAccessLogType:                        "DownstreamEnd",
			schema.AttrEnvoyStreamID:                             "s-1",
			schema.AttrEnvoyAttemptCount:                         int64(2),
			schema.AttrEnvoyDurationMs:                           int64(36),
			schema.AttrEnvoyUpstreamBytesSent:                    int64(300),
			schema.AttrEnvoyUpstreamBytesReceived:                int64(1800),
		},
		ts: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC),
	}
}

func httpPayload() *cloudv1.L7AccessLog {
	return &cloudv1.L7AccessLog{
		Timestamp:     ts("2026-03-01T12:00:00Z"),
		Source:        &cloudv1.L7Endpoint{Ip: "10.244.1.10", Port: 51234, Namespace: "shop", Kind: "Deployment", Name: "frontend"},
		Destination:   &cloudv1.L7Endpoint{Ip: "10.244.2.11", Port: 8080, Namespace: "shop", Kind: "Service", Name: "cart", ServiceName: "cart"},
		Protocol:      "TCP",
		L7Protocol:    cloudv1.L7ProtocolType_L7_PROTOCOL_HTTP,
		DurationMs:    36,
		BytesSent:     300,
		BytesReceived: 1800,
		Allowed:       true,
		NodeId:        "sidecar~10.244.1.10~frontend-7d9f8b6c5-x2x4k.shop~shop.svc.cluster.local",
		ClusterName:   "outbound|8080||cart.shop.svc.cluster.local",
		Count:         3,
		FirstSeen:     ts("2026-03-01T12:00:00Z"),
		LastSeen:      ts("2026-03-01T12:00:20Z"),
		HttpData: &cloudv1.HTTPAccessLogData{
			Method:                      "GET",
			Path:                        "/api/v1/carts/42",
			Version:                     "2.0",
			Host:                        "cart.shop.svc.cluster.local",
			UserAgent:                   "curl/8.5.0",
			RequestHeaders:              map[string]string{"x-request-id": "abc", "authorization": "REDACTED", "referer": "https://shop.example/"},
			ResponseCode:                200,
			ResponseHeaders:             map[string]string{"content-type": "application/json,charset=utf-8"},
			RequestSize:                 10,
			ResponseSize:                512,
			Referer:                     "https://shop.example/",
			ResponseFlags:               []string{"URX"},
			AccessLogType:               "DownstreamEnd",
			StreamId:                    "s-1",
			UpstreamRequestAttemptCount: 2,
		},
	}
}

// tcpRecord is an inbound TCP access-log aggregate.
func tcpRecord() rec {
	return rec{
		eventName: schema.EventL7AccessLog,
		attrs: map[string]any{
			schema.AttrSourceAddress:              "10.244.5.10",
			schema.AttrSourcePort:                 int64(40000),
			schema.AttrDestinationAddress:         "10.244.6.10",
			schema.AttrDestinationPort:            int64(5432),
			schema.AttrDestNamespace:              "payments",
			schema.AttrDestPod:                    "postgres-0",
			schema.AttrDestService:                "postgres",
			schema.AttrNetworkTransport:           "tcp",
			schema.AttrEnvoyUpstreamCluster:       "inbound|5432||",
			schema.AttrEnvoyDirection:             "inbound",
			schema.AttrEnvoyAccessLogType:         "TcpConnectionEnd",
			schema.AttrEnvoyTerminationDetails:    "idle timeout",
			schema.AttrEnvoyConnBytesSent:         int64(4096),
			schema.AttrEnvoyConnBytesReceived:     int64(1024),
			schema.AttrEnvoyUpstreamBytesSent:     int64(1024),
			schema.AttrEnvoyUpstreamBytesReceived: int64(4096),
			schema.AttrEnvoyDurationMs:            int64(60000),
		},
		ts: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC),
	}
}

func tcpPayload() *cloudv1.L7AccessLog {
	return &cloudv1.L7AccessLog{
		Timestamp:     ts("2026-03-01T12:00:00Z"),
		Source:        &cloudv1.L7Endpoint{Ip: "10.244.5.10", Port: 40000},
		Destination:   &cloudv1.L7Endpoint{Ip: "10.244.6.10", Port: 5432, Namespace: "payments", Kind: "Pod", Name: "postgres-0", ServiceName: "postgres"},
		Protocol:      "TCP",
		L7Protocol:    cloudv1.L7ProtocolType_L7_PROTOCOL_TCP,
		DurationMs:    60000,
		BytesSent:     1024,
		BytesReceived: 4096,
		Allowed:       true,
		ClusterName:   "inbound|5432||",
		Count:         1,
		FirstSeen:     ts("2026-03-01T12:00:00Z"),
		LastSeen:      ts("2026-03-01T12:00:00Z"),
		TcpData: &cloudv1.TCPAccessLogData{
			ConnectionState:              "CLOSED",
			ReceivedBytes:                1024,
			SentBytes:                    4096,
			ConnectionTerminationDetails: "idle timeout",
			AccessLogType:                "TcpConnectionEnd",
		},
	}
}

func TestL7AccessLog(t *testing.T) {
	tests := []struct {
		name   string
		rec    func() rec
		edit   func(a map[string]any)
		want   func() *cloudv1.L7AccessLog
		change func(l *cloudv1.L7AccessLog)
		reason Reason
		detail string
	}{
		{name: "http", rec: httpRecord, want: httpPayload},
		{name: "tcp", rec: tcpRecord, want: tcpPayload},
		{
			name: "http denied by authorization", rec: httpRecord, want: httpPayload,
			edit:   func(a map[string]any) { a[schema.AttrEnvoyResponseFlags] = []any{"UAEX"} },
			change: func(l *cloudv1.L7AccessLog) { l.Allowed, l.HttpData.ResponseFlags = false, []string{"UAEX"} },
		},
		{
			name: "no route", rec: httpRecord, want: httpPayload,
			edit:   func(a map[string]any) { a[schema.AttrEnvoyResponseFlags] = []any{"NR"} },
			change: func(l *cloudv1.L7AccessLog) { l.Allowed, l.HttpData.ResponseFlags = false, []string{"NR"} },
		},
		{
			name: "http upstream failure is not a denial", rec: httpRecord, want: httpPayload,
			edit:   func(a map[string]any) { a[schema.AttrEnvoyResponseFlags] = []any{"UF"} },
			change: func(l *cloudv1.L7AccessLog) { l.HttpData.ResponseFlags = []string{"UF"} },
		},
		{
			name: "tcp upstream failure", rec: tcpRecord, want: tcpPayload,
			edit:   func(a map[string]any) { a[schema.AttrEnvoyResponseFlags] = []any{"UF"} },
			change: func(l *cloudv1.L7AccessLog) { l.Allowed = false },
		},
		{
			name: "blackhole", rec: tcpRecord, want: tcpPayload,
			edit:   func(a map[string]any) { a[schema.AttrEnvoyUpstreamCluster] = "BlackHoleCluster" },
			change: func(l *cloudv1.L7AccessLog) { l.Allowed, l.ClusterName = false, "BlackHoleCluster" },
		},
		{
			name: "tcp states", rec: tcpRecord, want: tcpPayload,
			edit: func(a map[string]any) { a[schema.AttrEnvoyAccessLogType] = "NotSet" },
			change: func(l *cloudv1.L7AccessLog) {
				l.TcpData.ConnectionState, l.TcpData.AccessLogType = "TERMINATED", "NotSet"
			},
		},
		{
			name: "http/1.1 and unknown versions", rec: httpRecord, want: httpPayload,
			edit:   func(a map[string]any) { a[schema.AttrNetworkProtocolVersion] = "1.1" },
			change: func(l *cloudv1.L7AccessLog) { l.HttpData.Version = "1.1" },
		},
		{
			name: "no version", rec: httpRecord, want: httpPayload,
			edit:   func(a map[string]any) { delete(a, schema.AttrNetworkProtocolVersion) },
			change: func(l *cloudv1.L7AccessLog) { l.HttpData.Version = "unknown" },
		},
		{name: "no source address", rec: httpRecord, edit: func(a map[string]any) { delete(a, schema.AttrSourceAddress) }, reason: ReasonMissingAttribute, detail: schema.AttrSourceAddress},
		{
			name: "header that is not a string", rec: httpRecord,
			edit:   func(a map[string]any) { a[schema.AttrHTTPRequestHeaderPrefix+"x-n"] = int64(1) },
			reason: ReasonInvalidAttribute, detail: schema.AttrHTTPRequestHeaderPrefix + "x-n",
		},
		{name: "flags not strings", rec: httpRecord, edit: func(a map[string]any) { a[schema.AttrEnvoyResponseFlags] = "UH" }, reason: ReasonInvalidAttribute, detail: schema.AttrEnvoyResponseFlags},
		// Byte counts are unsigned in the protocol: a negative one from a sender is invalid,
		// never wrapped into 2^64-1 bytes.
		{
			name: "negative http body size", rec: httpRecord,
			edit:   func(a map[string]any) { a[schema.AttrHTTPRequestBodySize] = int64(-1) },
			reason: ReasonInvalidAttribute, detail: schema.AttrHTTPRequestBodySize,
		},
		{
			name: "negative upstream byte count", rec: httpRecord,
			edit:   func(a map[string]any) { a[schema.AttrEnvoyUpstreamBytesSent] = int64(-300) },
			reason: ReasonInvalidAttribute, detail: schema.AttrEnvoyUpstreamBytesSent,
		},
		{
			name: "negative tcp byte count", rec: tcpRecord,
			edit:   func(a map[string]any) { a[schema.AttrEnvoyConnBytesReceived] = int64(math.MinInt64) },
			reason: ReasonInvalidAttribute, detail: schema.AttrEnvoyConnBytesReceived,
		},
		{
			name: "negative attempt count", rec: tcpRecord,
			edit:   func(a map[string]any) { a[schema.AttrEnvoyAttemptCount] = int64(-2) },
			reason: ReasonInvalidAttribute, detail: schema.AttrEnvoyAttemptCount,
		},
		{
			name: "negative port", rec: tcpRecord,
			edit:   func(a map[string]any) { a[schema.AttrSourcePort] = int64(-1) },
			reason: ReasonInvalidAttribute, detail: schema.AttrSourcePort,
		},
		// Counts too large for their field saturate instead of wrapping.
		{
			name: "huge attempt count and status code saturate", rec: httpRecord, want: httpPayload,
			edit: func(a map[string]any) {
				a[schema.AttrEnvoyAttemptCount] = int64(1) << 40
				a[schema.AttrHTTPResponseStatusCode] = int64(1)<<32 + 200
			},
			change: func(l *cloudv1.L7AccessLog) {
				l.HttpData.UpstreamRequestAttemptCount = math.MaxUint32
				l.HttpData.ResponseCode = 999
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := tc.rec()
			if tc.edit != nil {
				tc.edit(r.attrs)
			}
			res := NewMapper(fixedNow).Map(logsOf(t, r))
			if tc.reason != "" {
				require.Empty(t, res.Items)
				require.Equal(t, []Drop{{EventName: schema.EventL7AccessLog, Reason: tc.reason, Count: 1, Detail: tc.detail}}, res.Drops)
				return
			}
			require.Empty(t, res.Drops)
			want := tc.want()
			if tc.change != nil {
				tc.change(want)
			}
			assertPayloadsEqual(t, []proto.Message{want}, payloads(res.Items))
		})
	}
}

// Hostile values (invalid UTF-8, huge strings, many headers) still give payloads that marshal.
func TestNetworkRecordsWithHostileValues(t *testing.T) {
	bad := "caf\xc3(" + strings.Repeat("x", 1<<16)
	f := flowRecord()
	f.attrs[schema.AttrCiliumSourceLabels] = []any{bad}
	f.attrs[schema.AttrSourceWorkloadName] = bad
	h := httpRecord()
	for i := range 10_000 {
		h.attrs[schema.AttrHTTPRequestHeaderPrefix+"x-"+strings.Repeat("h", i%50)+string(rune('a'+i%26))] = []any{bad}
	}
	h.attrs[schema.AttrURLPath] = bad
	res := NewMapper(fixedNow).Map(logsOf(t, f, h))
	require.Empty(t, res.Drops)
	require.Len(t, res.Items, 2)
	for _, it := range res.Items {
		_, err := proto.Marshal(it.Payload)
		require.NoError(t, err)
	}
}
