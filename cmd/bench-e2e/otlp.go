package main

import (
	"context"
	"net"
	"strconv"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	_ "google.golang.org/grpc/encoding/gzip" // the sink reads what otlp_grpc sends by default

	"github.com/kestrelai/otelcol-kestrel/internal/schema"
)

// otlpSignal is what an OTLP load sends.
type otlpSignal int

const (
	otlpLogs otlpSignal = iota
	otlpMetrics
)

// otlpLoad sends OTLP over gRPC (pdata's OTLP client, as an SDK or another collector would)
// in requests of batch items at a fixed rate, one request in flight. Logs go through
// otlp → memory_limiter → batch → kestrel to the cloud as PodLogs; metrics through
// otlp → memory_limiter → metrics_store → nop, delivered being the points the store took in.
// The baseline is the plain pass-through otlp → memory_limiter → batch → otlp_grpc into a
// sink in this process, in the same binary.
type otlpLoad struct {
	signal   otlpSignal
	rate     int // items/s: log records or data points
	batch    int // items per request
	baseline bool

	addr string
	conn *grpc.ClientConn
	sink *otlpSink
	sent atomic.Int64
	// stored is the metrics store's count of points taken in, read before the collector
	// stops.
	stored int64
}

func (o *otlpLoad) configure(_ context.Context, _ *env, cfg *collectorConfig) error {
	var err error
	if o.addr, err = freeAddr(); err != nil {
		return err
	}
	cfg.Receivers["otlp"] = map[string]any{"protocols": map[string]any{"grpc": map[string]any{"endpoint": o.addr}}}
	cfg.Processors["memory_limiter"] = memoryLimiter
	name := "logs"
	if o.signal == otlpMetrics {
		name = "metrics"
	}
	switch {
	case o.baseline:
		if o.sink, err = startOTLPSink(); err != nil {
			return err
		}
		cfg.Processors["batch"] = batch
		cfg.Exporters["otlp_grpc"] = map[string]any{"endpoint": o.sink.addr, "tls": map[string]any{"insecure": true}}
		cfg.Pipelines[name] = pipeline{Receivers: []string{"otlp"}, Processors: []string{"memory_limiter", "batch"}, Exporters: []string{"otlp_grpc"}}
	case o.signal == otlpLogs:
		logsToCloud(cfg, "otlp")
	default:
		cfg.Processors["metrics_store"] = map[string]any{"connection": "kestrel_command"}
		cfg.Exporters["nop"] = map[string]any{}
		cfg.Pipelines[name] = pipeline{Receivers: []string{"otlp"}, Processors: []string{"memory_limiter", "metrics_store"}, Exporters: []string{"nop"}}
	}
	return nil
}

func (o *otlpLoad) ready(ctx context.Context, e *env) error {
	var err error
	if o.conn, err = grpc.NewClient(o.addr, grpc.WithTransportCredentials(insecure.NewCredentials())); err != nil {
		return err
	}
	if o.baseline {
		return nil
	}
	return e.waitCloudReady(ctx)
}

// podLogs is one request of n application log lines from 20 pods of Deployment checkout
// (two containers each), as a log agent forwards them.
func podLogs(seq int64, n int, now time.Time) plog.Logs {
	ld := plog.NewLogs()
	const perResource = 25
	for i := 0; i < n; i += perResource {
		rl := ld.ResourceLogs().AppendEmpty()
		p := (seq + int64(i/perResource)) % 40
		attrs := rl.Resource().Attributes()
		attrs.PutStr("k8s.namespace.name", "shop")
		attrs.PutStr("k8s.pod.name", "checkout-7d9f8b6c5-"+strconv.FormatInt(p/2, 10))
		attrs.PutStr("k8s.pod.uid", "0b8f2c1e-3a4d-4e5f-9a6b-"+strconv.FormatInt(100000000000+p/2, 10))
		attrs.PutStr("k8s.container.name", []string{"app", "sidecar"}[p%2])
		attrs.PutStr("k8s.node.name", "worker-"+strconv.FormatInt(p%3, 10))
		lrs := rl.ScopeLogs().AppendEmpty().LogRecords()
		for j := 0; j < perResource && i+j < n; j++ {
			lr := lrs.AppendEmpty()
			lr.SetTimestamp(pcommon.NewTimestampFromTime(now))
			lr.SetSeverityNumber(plog.SeverityNumberInfo)
			lr.SetSeverityText("INFO")
			lr.Body().SetStr("GET /api/v1/cart/" + strconv.FormatInt(seq*int64(n)+int64(i+j), 10) +
				" 200 12ms user_agent=\"Go-http-client/2.0\" trace_id=4bf92f3577b34da6a3ce929d0e0e4736")
			lr.Attributes().PutStr("log.iostream", "stdout")
		}
	}
	return ld
}

// podMetrics is one request of n gauge points: 50 metrics of each of 20 pods of Deployment
// checkout, the pod cycling with seq, so the store holds 1,000 series.
func podMetrics(seq int64, n int, now time.Time) pmetric.Metrics {
	md := pmetric.NewMetrics()
	const perResource = 50
	for i := 0; i < n; i += perResource {
		rm := md.ResourceMetrics().AppendEmpty()
		p := (seq*int64(n)/perResource + int64(i/perResource)) % 20
		attrs := rm.Resource().Attributes()
		attrs.PutStr("k8s.namespace.name", "shop")
		attrs.PutStr("k8s.pod.name", "checkout-7d9f8b6c5-"+strconv.FormatInt(p, 10))
		attrs.PutStr("k8s.deployment.name", "checkout")
		ms := rm.ScopeMetrics().AppendEmpty().Metrics()
		for j := 0; j < perResource && i+j < n; j++ {
			m := ms.AppendEmpty()
			m.SetName("app.metric." + strconv.Itoa(j))
			m.SetUnit("1")
			dp := m.SetEmptyGauge().DataPoints().AppendEmpty()
			dp.SetTimestamp(pcommon.NewTimestampFromTime(now))
			dp.SetDoubleValue(float64(seq%1000) / 10)
		}
	}
	return md
}

func (o *otlpLoad) run(ctx context.Context, _ *env) (int64, error) {
	logs, metrics := plogotlp.NewGRPCClient(o.conn), pmetricotlp.NewGRPCClient(o.conn)
	start := time.Now()
	t := time.NewTicker(sendInterval)
	defer t.Stop()
	var seq int64
	for ctx.Err() == nil {
		due := int64(time.Since(start).Seconds() * float64(o.rate))
		for o.sent.Load()+int64(o.batch) <= due && ctx.Err() == nil {
			var err error
			if o.signal == otlpLogs {
				_, err = logs.Export(ctx, plogotlp.NewExportRequestFromLogs(podLogs(seq, o.batch, time.Now())))
			} else {
				_, err = metrics.Export(ctx, pmetricotlp.NewExportRequestFromMetrics(podMetrics(seq, o.batch, time.Now())))
			}
			if err != nil {
				// The load's end: gRPC's own deadline timer can fire before ctx reports it.
				if dl, ok := ctx.Deadline(); ctx.Err() != nil || ok && !time.Now().Before(dl) {
					break
				}
				return o.sent.Load(), err
			}
			seq++
			o.sent.Add(int64(o.batch))
		}
		select {
		case <-ctx.Done():
		case <-t.C:
		}
	}
	return o.sent.Load(), nil
}

func (o *otlpLoad) settle(ctx context.Context, e *env, sent int64) error {
	switch {
	case o.baseline:
		return waitFor(ctx, func() bool { return o.sink.items.Load() >= sent })
	case o.signal == otlpLogs:
		return waitFor(ctx, func() bool { return sumCounts(e.cloud.Records()) >= sent })
	}
	err := e.waitSelfMetric(ctx, "otelcol_metrics_store_points_stored", float64(sent))
	if m, serr := scrape(ctx, e.metricsAddr); serr == nil {
		o.stored = int64(m.sum("otelcol_metrics_store_points_stored"))
	}
	return err
}

func (o *otlpLoad) delivered(_ context.Context, e *env) (int64, error) {
	switch {
	case o.baseline:
		return o.sink.items.Load(), nil
	case o.signal == otlpLogs:
		return sumCounts(e.cloud.Records()), nil
	}
	return o.stored, nil
}

func (o *otlpLoad) reconnects() int64 { return -1 }

func (o *otlpLoad) close() {
	if o.conn != nil {
		_ = o.conn.Close()
	}
	if o.sink != nil {
		o.sink.srv.Stop()
	}
}

// otlpSink is the baseline's destination: an OTLP/gRPC server that counts what arrives.
type otlpSink struct {
	plogotlp.UnimplementedGRPCServer
	metrics sinkMetrics
	srv     *grpc.Server
	addr    string
	items   atomic.Int64
	// aggregates counts a log record as its kestrelai.aggregate.count (the node agent's
	// flows), not as one.
	aggregates bool
}

type sinkMetrics struct {
	pmetricotlp.UnimplementedGRPCServer
	items *atomic.Int64
}

func startOTLPSink() (*otlpSink, error) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &otlpSink{srv: grpc.NewServer(), addr: lis.Addr().String()}
	s.metrics.items = &s.items
	plogotlp.RegisterGRPCServer(s.srv, s)
	pmetricotlp.RegisterGRPCServer(s.srv, &s.metrics)
	go func() { _ = s.srv.Serve(lis) }()
	return s, nil
}

func (s *otlpSink) Export(_ context.Context, req plogotlp.ExportRequest) (plogotlp.ExportResponse, error) {
	if !s.aggregates {
		s.items.Add(int64(req.Logs().LogRecordCount()))
		return plogotlp.NewExportResponse(), nil
	}
	var n int64
	rls := req.Logs().ResourceLogs()
	for i := range rls.Len() {
		sls := rls.At(i).ScopeLogs()
		for j := range sls.Len() {
			lrs := sls.At(j).LogRecords()
			for k := range lrs.Len() {
				if v, ok := lrs.At(k).Attributes().Get(schema.AttrAggregateCount); ok {
					n += v.Int()
				}
			}
		}
	}
	s.items.Add(n)
	return plogotlp.NewExportResponse(), nil
}

func (s *sinkMetrics) Export(_ context.Context, req pmetricotlp.ExportRequest) (pmetricotlp.ExportResponse, error) {
	s.items.Add(int64(req.Metrics().DataPointCount()))
	return pmetricotlp.NewExportResponse(), nil
}
