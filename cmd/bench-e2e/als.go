package main

import (
	"context"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	accesslogv3 "github.com/envoyproxy/go-control-plane/envoy/data/accesslog/v3"
	alsv3 "github.com/envoyproxy/go-control-plane/envoy/service/accesslog/v3"
	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// alsLoad is sidecars streaming HTTP access logs over Envoy's ALS (go-control-plane clients)
// through envoy_access_log → memory_limiter → batch → kestrel to the cloud; items are
// entries, delivered is the sum of the counts of the cloud.v1.L7AccessLog aggregates.
type alsLoad struct {
	rate     int // entries/s over all sidecars
	keys     int
	sidecars int

	addr    string
	conns   []*grpc.ClientConn
	streams []alsv3.AccessLogService_StreamAccessLogsClient
	sent    atomic.Int64
}

func (a *alsLoad) configure(_ context.Context, _ *env, cfg *collectorConfig) error {
	var err error
	if a.addr, err = freeAddr(); err != nil {
		return err
	}
	cfg.Receivers["envoy_access_log"] = map[string]any{"endpoint": a.addr}
	logsToCloud(cfg, "envoy_access_log")
	return nil
}

func (a *alsLoad) ready(ctx context.Context, e *env) error {
	for range a.sidecars {
		conn, err := grpc.NewClient(a.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			return err
		}
		a.conns = append(a.conns, conn)
		st, err := alsv3.NewAccessLogServiceClient(conn).StreamAccessLogs(ctx, grpc.WaitForReady(true))
		if err != nil {
			return err
		}
		a.streams = append(a.streams, st)
	}
	return e.waitCloudReady(ctx)
}

// sidecarNode is what an Istio sidecar of Deployment frontend-<s> reports about itself.
func sidecarNode(s int) (*alsv3.StreamAccessLogsMessage_Identifier, error) {
	pod := "frontend-" + strconv.Itoa(s) + "-7d9f8b6c5-x2x4k"
	md, err := structpb.NewStruct(map[string]any{
		"CLUSTER_ID": "Kubernetes", "ISTIO_VERSION": "1.24.2", "NAME": pod, "NAMESPACE": "shop",
		"OWNER": "kubernetes://apis/apps/v1/namespaces/shop/deployments/frontend-" + strconv.Itoa(s),
	})
	if err != nil {
		return nil, err
	}
	return &alsv3.StreamAccessLogsMessage_Identifier{
		Node: &corev3.Node{
			Id:       fmt.Sprintf("sidecar~10.244.1.%d~%s.shop~shop.svc.cluster.local", s+10, pod),
			Cluster:  "frontend-" + strconv.Itoa(s) + ".shop",
			Metadata: md,
		},
		LogName: "envoy.access_loggers.http_grpc",
	}, nil
}

func sockAddr(ip string, port uint32) *corev3.Address {
	return &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
		Address: ip, PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: port},
	}}}
}

// accessLogEntry is the n-th request of a sidecar, for key k: GET /api/v1/r<k>/<n> to
// cart, which the receiver aggregates as /api/v1/r<k>/:id.
func accessLogEntry(k int, n int64, port uint32, t time.Time) *accesslogv3.HTTPAccessLogEntry {
	return &accesslogv3.HTTPAccessLogEntry{
		CommonProperties: &accesslogv3.AccessLogCommon{
			DownstreamRemoteAddress:     sockAddr("10.244.1.10", port),
			UpstreamRemoteAddress:       sockAddr("10.244.2.11", 8080),
			UpstreamCluster:             "outbound|8080||cart.shop.svc.cluster.local",
			StartTime:                   timestamppb.New(t),
			Duration:                    durationpb.New(12 * time.Millisecond),
			UpstreamWireBytesSent:       100,
			UpstreamWireBytesReceived:   1000,
			AccessLogType:               accesslogv3.AccessLogType_DownstreamEnd,
			StreamId:                    "stream-" + strconv.FormatInt(n, 10),
			UpstreamRequestAttemptCount: 1,
		},
		ProtocolVersion: accesslogv3.HTTPAccessLogEntry_HTTP2,
		Request: &accesslogv3.HTTPRequestProperties{
			RequestMethod: corev3.RequestMethod_GET,
			Scheme:        "http",
			Authority:     "cart.shop.svc.cluster.local:8080",
			Path:          "/api/v1/r" + strconv.Itoa(k) + "/" + strconv.FormatInt(n, 10),
			UserAgent:     "Go-http-client/2.0",
			RequestHeaders: map[string]string{
				"x-request-id": strconv.FormatInt(n, 16), "authorization": "Bearer x", "user-agent": "Go-http-client/2.0",
			},
		},
		Response: &accesslogv3.HTTPResponseProperties{
			ResponseCode:      wrapperspb.UInt32(200),
			ResponseBodyBytes: 512,
			ResponseHeaders:   map[string]string{"content-type": "application/json"},
		},
	}
}

// sendInterval is how often a sidecar flushes its buffered entries (Envoy's default is 1 s
// or 16 KiB, whichever comes first; at these rates 16 KiB fills in a few milliseconds).
const sendInterval = 10 * time.Millisecond

func (a *alsLoad) run(ctx context.Context, _ *env) (int64, error) {
	var g errgroup.Group
	for s, st := range a.streams {
		g.Go(func() error {
			id, err := sidecarNode(s)
			if err != nil {
				return err
			}
			rate := float64(a.rate) / float64(len(a.streams))
			start := time.Now()
			t := time.NewTicker(sendInterval)
			defer t.Stop()
			var n int64
			for ctx.Err() == nil {
				due := int64(time.Since(start).Seconds() * rate)
				if due > n {
					entries := make([]*accesslogv3.HTTPAccessLogEntry, 0, due-n)
					now := time.Now()
					for ; n < due; n++ {
						// Sidecar s owns the keys k ≡ s (mod sidecars).
						k := int(n)%max(a.keys/len(a.streams), 1)*len(a.streams) + s
						entries = append(entries, accessLogEntry(k, n, uint32(32768+n%28232), now))
					}
					msg := &alsv3.StreamAccessLogsMessage{Identifier: id, LogEntries: &alsv3.StreamAccessLogsMessage_HttpLogs{
						HttpLogs: &alsv3.StreamAccessLogsMessage_HTTPAccessLogEntries{LogEntry: entries},
					}}
					id = nil // Envoy identifies itself on a stream's first message only
					if err := st.Send(msg); err != nil {
						return err
					}
					a.sent.Add(int64(len(entries)))
				}
				select {
				case <-ctx.Done():
				case <-t.C:
				}
			}
			return nil
		})
	}
	err := g.Wait()
	return a.sent.Load(), err
}

func (a *alsLoad) settle(ctx context.Context, e *env, sent int64) error {
	return e.waitSelfMetric(ctx, "otelcol_envoy_access_log_receiver_entries", float64(sent))
}

func (a *alsLoad) delivered(_ context.Context, e *env) (int64, error) {
	return sumCounts(e.cloud.Records()), nil
}

func (a *alsLoad) reconnects() int64 { return -1 }

func (a *alsLoad) close() {
	for _, st := range a.streams {
		_ = st.CloseSend()
	}
	for _, c := range a.conns {
		_ = c.Close()
	}
}
