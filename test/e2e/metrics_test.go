package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetricgrpc"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	"google.golang.org/protobuf/encoding/protojson"

	cloudv1 "github.com/kestrelai/otelcol-kestrel/api/cloud/v1"
	"github.com/kestrelai/otelcol-kestrel/internal/devcloud"
	"github.com/kestrelai/otelcol-kestrel/internal/testutil"
	"github.com/kestrelai/otelcol-kestrel/internal/testutil/cloudtest"
)

const metricsConfig = `
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: %[1]s
processors:
  metrics_store:
    max_response_bytes: 16384
exporters:
  nop: {}
service:
  extensions: [kestrel_command]
  pipelines:
    metrics:
      receivers: [otlp]
      processors: [metrics_store]
      exporters: [nop]
  telemetry:
    logs:
      level: warn
    metrics:
      level: none
`

// pod is one fake pod whose SDK reports metrics with its Kubernetes context on the
// resource, as the k8s_attributes processor or the OTel Operator would set it.
type pod struct {
	namespace, name, deployment string
}

// Metrics sent by the OTel Go SDK over OTLP are kept by metrics_store, and
// `kestrel-devcloud ctl metrics-query` gets exactly the expected series and points back
// through the cloud connection; an answer too large for the limit comes back truncated.
func TestMetricsQueryFromCloud(t *testing.T) {
	ctl := buildDevcloudCLI(t)
	dc := cloudtest.Start(t, devcloud.Config{AdminListen: "127.0.0.1:0"})
	otlp := testutil.FreeAddr(t)
	startWithConfig(t, withConnection(t, dc, fmt.Sprintf(metricsConfig, otlp)))
	ctx := testCtx(t, 60*time.Second)
	dc.WaitCommitted(t)

	pods := []pod{
		{"shop", "checkout-7d9f8b6c5-x2x4k", "checkout"},
		{"shop", "checkout-7d9f8b6c5-q9w8e", "checkout"},
		// No workload attribute: resolved from the pod name's pod-template-hash.
		{"shop", "cart-5c6d7f8b9-z7v6n", ""},
		{"other", "checkout-6b5d4c9f8-abcde", "checkout"},
	}
	const collections = 3
	for _, p := range pods {
		sendPodMetrics(t, otlp, p, collections)
	}
	// A pod with many series, for the size limit.
	sendWideMetrics(t, otlp, pod{"bulk", "exporter-0", ""}, 300)

	query := func(args ...string) *cloudv1.MetricsQueryResponse {
		t.Helper()
		var out, errOut bytes.Buffer
		cmd := exec.CommandContext(ctx, ctl, append([]string{"ctl", "--admin", dc.AdminAddr(), "metrics-query", "--since", "10m"}, args...)...)
		cmd.Stdout, cmd.Stderr = &out, &errOut
		require.NoError(t, cmd.Run(), errOut.String())
		var resp cloudv1.MetricsQueryResponse
		require.NoError(t, protojson.Unmarshal(out.Bytes(), &resp))
		require.Empty(t, resp.GetErrorMessage())
		return &resp
	}

	// Everything arrives asynchronously through the pipeline; wait until the namespace
	// answer is complete before checking the others.
	var shop *cloudv1.MetricsQueryResponse
	require.Eventually(t, func() bool {
		shop = query("--namespace", "shop")
		return shop.GetTotalSeriesMatched() == 6 && points(shop) == 6*collections
	}, 30*time.Second, 50*time.Millisecond)
	assert.Equal(t, []string{
		"cart-5c6d7f8b9-z7v6n/app.cpu.usage", "cart-5c6d7f8b9-z7v6n/app.requests",
		"checkout-7d9f8b6c5-q9w8e/app.cpu.usage", "checkout-7d9f8b6c5-q9w8e/app.requests",
		"checkout-7d9f8b6c5-x2x4k/app.cpu.usage", "checkout-7d9f8b6c5-x2x4k/app.requests",
	}, seriesNames(shop))
	assert.False(t, shop.GetTruncated())
	for _, m := range shop.GetMetrics() {
		require.Len(t, m.GetDataPoints(), collections)
		for i, dp := range m.GetDataPoints() {
			switch m.GetName() {
			case "app.cpu.usage":
				assert.Equal(t, cloudv1.OTelMetricType_OTEL_METRIC_TYPE_GAUGE, m.GetType())
				assert.InDelta(t, 0.25*float64(i+1), dp.GetValue(), 1e-9)
			case "app.requests":
				assert.Equal(t, cloudv1.OTelMetricType_OTEL_METRIC_TYPE_SUM, m.GetType())
				assert.InDelta(t, float64(10*(i+1)), dp.GetValue(), 1e-9, "cumulative sum")
			}
		}
		assert.Equal(t, "Deployment", m.GetWorkloadKind())
	}

	workload := query("--namespace", "shop", "--workload", "checkout", "--kind", "Deployment")
	assert.Equal(t, []string{
		"checkout-7d9f8b6c5-q9w8e/app.cpu.usage", "checkout-7d9f8b6c5-q9w8e/app.requests",
		"checkout-7d9f8b6c5-x2x4k/app.cpu.usage", "checkout-7d9f8b6c5-x2x4k/app.requests",
	}, seriesNames(workload))

	resolved := query("--namespace", "shop", "--workload", "cart", "--kind", "Deployment", "--metric", "app.cpu.usage")
	assert.Equal(t, []string{"cart-5c6d7f8b9-z7v6n/app.cpu.usage"}, seriesNames(resolved))

	prefix := query("--pod-prefix", "checkout-", "--metric", "app.requests", "--max-points", "1")
	assert.Equal(t, []string{
		"checkout-6b5d4c9f8-abcde/app.requests", "checkout-7d9f8b6c5-q9w8e/app.requests", "checkout-7d9f8b6c5-x2x4k/app.requests",
	}, seriesNames(prefix))
	for _, m := range prefix.GetMetrics() {
		require.Len(t, m.GetDataPoints(), 1)
		assert.InDelta(t, float64(10*collections), m.GetDataPoints()[0].GetValue(), 1e-9, "the most recent point is kept")
	}

	var bulk *cloudv1.MetricsQueryResponse
	require.Eventually(t, func() bool {
		bulk = query("--namespace", "bulk")
		return bulk.GetTotalSeriesMatched() == 300
	}, 30*time.Second, 50*time.Millisecond)
	assert.True(t, bulk.GetTruncated(), "300 series do not fit in 16 KiB")
	assert.Less(t, bulk.GetTotalSeriesReturned(), int32(300))
	assert.Len(t, bulk.GetMetrics(), int(bulk.GetTotalSeriesReturned()))
}

// sendPodMetrics reports a gauge and a counter from one pod, collections times.
func sendPodMetrics(t *testing.T, otlp string, p pod, collections int) {
	t.Helper()
	mp := meterProvider(t, otlp, p)
	meter := mp.Meter("e2e")
	cpu, err := meter.Float64Gauge("app.cpu.usage")
	require.NoError(t, err)
	reqs, err := meter.Int64Counter("app.requests")
	require.NoError(t, err)
	ctx := context.Background()
	for i := range collections {
		cpu.Record(ctx, 0.25*float64(i+1))
		reqs.Add(ctx, 10)
		require.NoError(t, mp.ForceFlush(ctx))
		// The store keeps millisecond timestamps; distinct collections need distinct ones.
		time.Sleep(5 * time.Millisecond)
	}
}

// sendWideMetrics reports one gauge with n label values from one pod.
func sendWideMetrics(t *testing.T, otlp string, p pod, n int) {
	t.Helper()
	mp := meterProvider(t, otlp, p)
	g, err := mp.Meter("e2e").Float64Gauge("queue.depth")
	require.NoError(t, err)
	for i := range n {
		g.Record(context.Background(), float64(i), metric.WithAttributes(attribute.String("queue", fmt.Sprintf("q-%03d", i))))
	}
	require.NoError(t, mp.ForceFlush(context.Background()))
}

func meterProvider(t *testing.T, otlp string, p pod) *sdkmetric.MeterProvider {
	t.Helper()
	exp, err := otlpmetricgrpc.New(context.Background(), otlpmetricgrpc.WithEndpoint(otlp), otlpmetricgrpc.WithInsecure())
	require.NoError(t, err)
	res := []attribute.KeyValue{attribute.String("k8s.namespace.name", p.namespace), attribute.String("k8s.pod.name", p.name)}
	if p.deployment != "" {
		res = append(res, attribute.String("k8s.deployment.name", p.deployment))
	}
	mp := sdkmetric.NewMeterProvider(
		// Only ForceFlush exports; the interval is long so no collection sneaks in between.
		sdkmetric.WithReader(sdkmetric.NewPeriodicReader(exp, sdkmetric.WithInterval(time.Hour))),
		sdkmetric.WithResource(resource.NewSchemaless(res...)),
	)
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	return mp
}

func seriesNames(r *cloudv1.MetricsQueryResponse) []string {
	var out []string
	for _, m := range r.GetMetrics() {
		out = append(out, m.GetPodName()+"/"+m.GetName())
	}
	sort.Strings(out)
	return out
}

func points(r *cloudv1.MetricsQueryResponse) int {
	n := 0
	for _, m := range r.GetMetrics() {
		n += len(m.GetDataPoints())
	}
	return n
}

// buildDevcloudCLI builds the kestrel-devcloud binary users run, so the test drives the
// real `ctl metrics-query` command line.
func buildDevcloudCLI(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "kestrel-devcloud")
	cmd := exec.Command("go", "build", "-trimpath", "-o", bin, "github.com/kestrelai/otelcol-kestrel/cmd/kestrel-devcloud")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, string(out))
	return bin
}
