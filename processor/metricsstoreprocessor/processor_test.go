package metricsstoreprocessor

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/collector/processor/processortest"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/metric/metricdata/metricdatatest"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/timestamppb"

	cloudv1 "github.com/kestrelai/otelcol-kestrel/api/cloud/v1"
	"github.com/kestrelai/otelcol-kestrel/internal/cloudconn"
	"github.com/kestrelai/otelcol-kestrel/processor/metricsstoreprocessor/internal/metadata"
	"github.com/kestrelai/otelcol-kestrel/processor/metricsstoreprocessor/internal/metadatatest"
)

// testConnection is an in-memory cloudconn.Connection test double: it keeps the registered
// handlers so that a test can play Kestrel Cloud and send requests.
type testConnection struct {
	mu       sync.Mutex
	handlers map[protoreflect.FullName]cloudconn.Handler
	maxBytes int // MaxMessageBytes; 0 means the extension's default, 10 MiB
}

func (c *testConnection) Send(context.Context, proto.Message) error { return cloudconn.ErrNotConnected }

func (c *testConnection) SendAcknowledged(context.Context, proto.Message) (cloudconn.Acknowledgement, error) {
	return nil, cloudconn.ErrNotConnected
}

func (c *testConnection) Handle(requestType proto.Message, h cloudconn.Handler) (func(), error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	name := requestType.ProtoReflect().Descriptor().FullName()
	if _, dup := c.handlers[name]; dup {
		return nil, errors.New("handler already registered for " + string(name))
	}
	if c.handlers == nil {
		c.handlers = map[protoreflect.FullName]cloudconn.Handler{}
	}
	c.handlers[name] = h
	return func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		delete(c.handlers, name)
	}, nil
}

func (c *testConnection) MaxMessageBytes() int {
	if c.maxBytes == 0 {
		return 10 << 20
	}
	return c.maxBytes
}

// registered reports whether a handler for req's type is registered.
func (c *testConnection) registered(req proto.Message) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.handlers[req.ProtoReflect().Descriptor().FullName()]
	return ok
}

func (c *testConnection) RegisterSnapshot(cloudconn.SnapshotFunc) func() { return func() {} }

func (c *testConnection) State() cloudconn.State { return cloudconn.Ready }

func (c *testConnection) Subscribe(fn func(cloudconn.State)) func() {
	fn(cloudconn.Ready)
	return func() {}
}

// query plays the cloud: it sends req to the registered handler and returns the reply.
func (c *testConnection) query(t *testing.T, req *cloudv1.MetricsQueryRequest) *cloudv1.MetricsQueryResponse {
	t.Helper()
	c.mu.Lock()
	h := c.handlers[req.ProtoReflect().Descriptor().FullName()]
	c.mu.Unlock()
	require.NotNil(t, h, "no handler registered")
	resp, ok := h(context.Background(), req).(*cloudv1.MetricsQueryResponse)
	require.True(t, ok)
	return resp
}

// testExtension stands in for the kestrel_command extension.
type testExtension struct {
	component.StartFunc
	component.ShutdownFunc
	conn *testConnection
}

func (e *testExtension) Connection() cloudconn.Connection { return e.conn }

type testHost struct {
	extensions map[component.ID]component.Component
}

func (h *testHost) GetExtensions() map[component.ID]component.Component { return h.extensions }

func hostWith(conn *testConnection) *testHost {
	return &testHost{extensions: map[component.ID]component.Component{
		component.MustNewID("kestrel_command"): &testExtension{conn: conn},
	}}
}

func testMetrics(pod string, at time.Time, values ...float64) pmetric.Metrics {
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	rm.Resource().Attributes().PutStr("k8s.namespace.name", "shop")
	rm.Resource().Attributes().PutStr("k8s.pod.name", pod)
	dps := rm.ScopeMetrics().AppendEmpty().Metrics().AppendEmpty().SetEmptyGauge().DataPoints()
	rm.ScopeMetrics().At(0).Metrics().At(0).SetName("queue.depth")
	for i, v := range values {
		dp := dps.AppendEmpty()
		dp.SetTimestamp(pcommon.NewTimestampFromTime(at.Add(time.Duration(i) * time.Second)))
		dp.SetDoubleValue(v)
	}
	return md
}

func newTestProcessor(t *testing.T, set processor.Settings, mutate func(*Config)) (processor.Metrics, *consumertest.MetricsSink) {
	t.Helper()
	cfg := createDefaultConfig().(*Config)
	if mutate != nil {
		mutate(cfg)
	}
	sink := &consumertest.MetricsSink{}
	p, err := NewFactory().CreateMetrics(context.Background(), set, cfg, sink)
	require.NoError(t, err)
	return p, sink
}

func lastMinute() (*timestamppb.Timestamp, *timestamppb.Timestamp) {
	now := time.Now()
	return timestamppb.New(now.Add(-time.Minute)), timestamppb.New(now.Add(time.Minute))
}

func TestQueriesFromTheCloud(t *testing.T) {
	tel := componenttest.NewTelemetry()
	t.Cleanup(func() { require.NoError(t, tel.Shutdown(context.Background())) })
	p, sink := newTestProcessor(t, metadatatest.NewSettings(tel), nil)
	conn := &testConnection{}
	require.NoError(t, p.Start(context.Background(), hostWith(conn)))
	t.Cleanup(func() { require.NoError(t, p.Shutdown(context.Background())) })

	md := testMetrics("api-0", time.Now().Add(-10*time.Second), 1, 2)
	require.NoError(t, p.ConsumeMetrics(context.Background(), md))
	require.Len(t, sink.AllMetrics(), 1, "metrics pass through")
	require.Equal(t, md, sink.AllMetrics()[0])

	start, end := lastMinute()
	resp := conn.query(t, &cloudv1.MetricsQueryRequest{RequestId: "q1", Namespace: "shop", StartTime: start, EndTime: end})
	require.Empty(t, resp.ErrorMessage)
	require.Equal(t, "q1", resp.RequestId)
	require.Len(t, resp.Metrics, 1)
	require.Equal(t, "api-0", resp.Metrics[0].PodName)
	require.Len(t, resp.Metrics[0].DataPoints, 2)

	resp = conn.query(t, &cloudv1.MetricsQueryRequest{RequestId: "q2", WorkloadKind: "Rollout", StartTime: start, EndTime: end})
	require.Contains(t, resp.ErrorMessage, "unknown workload_kind")

	ignore := []metricdatatest.Option{metricdatatest.IgnoreTimestamp(), metricdatatest.IgnoreExemplars()}
	metadatatest.AssertEqualMetricsStorePointsStored(t, tel, []metricdata.DataPoint[int64]{{Value: 2}}, ignore...)
	metadatatest.AssertEqualMetricsStoreSeries(t, tel, []metricdata.DataPoint[int64]{{Value: 1}}, ignore...)
	metadatatest.AssertEqualMetricsStoreQueries(t, tel, []metricdata.DataPoint[int64]{
		{Value: 1, Attributes: attribute.NewSet(attribute.String("outcome", "ok"))},
		{Value: 1, Attributes: attribute.NewSet(attribute.String("outcome", "error"))},
	}, ignore...)
	got, err := tel.GetMetric("otelcol_metrics_store.query.duration")
	require.NoError(t, err)
	require.EqualValues(t, 2, got.Data.(metricdata.Histogram[float64]).DataPoints[0].Count)
	got, err = tel.GetMetric("otelcol_metrics_store.bytes")
	require.NoError(t, err)
	require.Positive(t, got.Data.(metricdata.Gauge[int64]).DataPoints[0].Value)
}

func TestRefusalsAndDropsAreCounted(t *testing.T) {
	tel := componenttest.NewTelemetry()
	t.Cleanup(func() { require.NoError(t, tel.Shutdown(context.Background())) })
	p, _ := newTestProcessor(t, metadatatest.NewSettings(tel), func(c *Config) { c.MaxSeries = 1 })
	require.NoError(t, p.Start(context.Background(), componenttest.NewNopHost()))
	t.Cleanup(func() { require.NoError(t, p.Shutdown(context.Background())) })

	now := time.Now().Add(-10 * time.Second)
	require.NoError(t, p.ConsumeMetrics(context.Background(), testMetrics("a", now, 1, 2)))
	require.NoError(t, p.ConsumeMetrics(context.Background(), testMetrics("b", now, 1, 2, 3)))
	require.NoError(t, p.ConsumeMetrics(context.Background(), testMetrics("a", now.Add(time.Second), 5)))

	ignore := []metricdatatest.Option{metricdatatest.IgnoreTimestamp(), metricdatatest.IgnoreExemplars()}
	metadatatest.AssertEqualMetricsStoreSeriesRefused(t, tel, []metricdata.DataPoint[int64]{
		{Value: 1, Attributes: attribute.NewSet(attribute.String("reason", "max_series"))},
	}, ignore...)
	metadatatest.AssertEqualMetricsStorePointsDropped(t, tel, []metricdata.DataPoint[int64]{
		{Value: 3, Attributes: attribute.NewSet(attribute.String("reason", "series_refused"))},
		{Value: 1, Attributes: attribute.NewSet(attribute.String("reason", "duplicate"))},
	}, ignore...)
}

func TestWorksWithoutTheConnection(t *testing.T) {
	core, logs := observer.New(zap.InfoLevel)
	set := metadatatest.NewSettings(componenttest.NewTelemetry())
	set.Logger = zap.New(core)
	p, sink := newTestProcessor(t, set, nil)
	require.NoError(t, p.Start(context.Background(), componenttest.NewNopHost()))
	require.NoError(t, p.ConsumeMetrics(context.Background(), testMetrics("a", time.Now(), 1)))
	require.NoError(t, p.Shutdown(context.Background()))
	require.Equal(t, 1, sink.DataPointCount())
	require.Equal(t, 1, logs.FilterMessageSnippet("connection extension not configured").Len())
}

func TestRejectsAnExtensionThatIsNotAConnection(t *testing.T) {
	p, _ := newTestProcessor(t, metadatatest.NewSettings(componenttest.NewTelemetry()), nil)
	type plainExtension struct {
		component.StartFunc
		component.ShutdownFunc
	}
	host := &testHost{extensions: map[component.ID]component.Component{
		component.MustNewID("kestrel_command"): &plainExtension{},
	}}
	require.ErrorContains(t, p.Start(context.Background(), host), "does not provide a Kestrel Cloud connection")
	require.NoError(t, p.Shutdown(context.Background()))
}

// One metrics_store/<name> in two pipelines is one store with one query handler.
func TestPipelinesShareOneStore(t *testing.T) {
	set := metadatatest.NewSettings(componenttest.NewTelemetry())
	set.ID = component.NewIDWithName(metadata.Type, "shared")
	first, _ := newTestProcessor(t, set, nil)
	second, _ := newTestProcessor(t, set, nil)
	conn := &testConnection{}
	host := hostWith(conn)
	require.NoError(t, first.Start(context.Background(), host))
	require.NoError(t, second.Start(context.Background(), host), "the handler is registered once")

	now := time.Now().Add(-5 * time.Second)
	require.NoError(t, first.ConsumeMetrics(context.Background(), testMetrics("a", now, 1)))
	require.NoError(t, second.ConsumeMetrics(context.Background(), testMetrics("b", now, 1)))
	start, end := lastMinute()
	req := &cloudv1.MetricsQueryRequest{RequestId: "r", StartTime: start, EndTime: end}
	require.Len(t, conn.query(t, req).Metrics, 2)

	require.NoError(t, first.Shutdown(context.Background()))
	require.Len(t, conn.query(t, req).Metrics, 2, "still serving while a pipeline runs")
	require.NoError(t, second.Shutdown(context.Background()))
	require.False(t, conn.registered(req), "the last shutdown unregisters the query handler")
}

func TestEvictionLoopRemovesExpiredSeries(t *testing.T) {
	tel := componenttest.NewTelemetry()
	t.Cleanup(func() { require.NoError(t, tel.Shutdown(context.Background())) })
	p, _ := newTestProcessor(t, metadatatest.NewSettings(tel), func(c *Config) {
		c.Retention, c.EvictionInterval = 200*time.Millisecond, 10*time.Millisecond
	})
	require.NoError(t, p.Start(context.Background(), componenttest.NewNopHost()))
	t.Cleanup(func() { require.NoError(t, p.Shutdown(context.Background())) })
	require.NoError(t, p.ConsumeMetrics(context.Background(), testMetrics("a", time.Now(), 1)))

	evicted := func() int64 {
		m, err := tel.GetMetric("otelcol_metrics_store.series.evicted")
		if err != nil {
			return 0
		}
		return m.Data.(metricdata.Sum[int64]).DataPoints[0].Value
	}
	require.Eventually(t, func() bool { return evicted() == 1 }, 5*time.Second, 10*time.Millisecond)
}

// A connection whose message limit (kestrel_command's max_message_size_mib) is below
// max_response_bytes could not carry the answers: the processor refuses to start.
func TestResponseLimitMustFitTheConnection(t *testing.T) {
	p, _ := newTestProcessor(t, processortest.NewNopSettings(metadata.Type), nil) // max_response_bytes 8 MiB
	conn := &testConnection{maxBytes: 4 << 20}
	err := p.Start(context.Background(), hostWith(conn))
	require.ErrorContains(t, err, "max_response_bytes (8388608) must be at most 4193280")
	require.NoError(t, p.Shutdown(context.Background()))
	assert.False(t, conn.registered(&cloudv1.MetricsQueryRequest{}))

	p, _ = newTestProcessor(t, processortest.NewNopSettings(metadata.Type), func(c *Config) { c.MaxResponseBytes = 4<<20 - 1024 })
	require.NoError(t, p.Start(context.Background(), hostWith(conn)))
	require.NoError(t, p.Shutdown(context.Background()))
}
