package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlplog/otlploggrpc"
	otellog "go.opentelemetry.io/otel/log"
	sdklog "go.opentelemetry.io/otel/sdk/log"
	"go.opentelemetry.io/otel/sdk/resource"

	"github.com/kestrelai/otelcol-kestrel/internal/schema"
)

// sender emits log records over OTLP/gRPC with the OTel Go SDK, as an application or a
// receiver in another collector would.
type sender struct {
	lp     *sdklog.LoggerProvider
	logger otellog.Logger
}

func newSender(t *testing.T, otlpAddr string, res ...attribute.KeyValue) *sender {
	t.Helper()
	exp, err := otlploggrpc.New(context.Background(),
		otlploggrpc.WithEndpoint(otlpAddr),
		otlploggrpc.WithInsecure(),
		// The collector answers Unavailable only while starting; retries cover that.
		otlploggrpc.WithRetry(otlploggrpc.RetryConfig{Enabled: true, InitialInterval: 50 * time.Millisecond, MaxInterval: time.Second, MaxElapsedTime: 30 * time.Second}))
	require.NoError(t, err)
	lp := sdklog.NewLoggerProvider(
		sdklog.WithProcessor(sdklog.NewBatchProcessor(exp, sdklog.WithExportInterval(20*time.Millisecond), sdklog.WithExportMaxBatchSize(100))),
		sdklog.WithResource(resource.NewSchemaless(res...)),
	)
	t.Cleanup(func() { _ = lp.Shutdown(context.Background()) })
	return &sender{lp: lp, logger: lp.Logger("e2e")}
}

// warningEvent emits one Kubernetes Warning event about a pod, as the k8s_inventory
// receiver (or contrib's k8s_events) would.
func (s *sender) warningEvent(i int) {
	var r otellog.Record
	r.SetEventName(schema.EventK8sEvent)
	r.SetTimestamp(time.Unix(1767225900, 0).Add(time.Duration(i) * time.Millisecond))
	r.SetSeverity(otellog.SeverityWarn)
	r.SetSeverityText("Warning")
	r.SetBody(attribute.StringValue(fmt.Sprintf("Back-off restarting failed container (%d)", i)))
	r.AddAttributes(
		attribute.String(schema.AttrK8sEventUID, fmt.Sprintf("ev-%d", i)),
		attribute.String(schema.AttrK8sEventName, fmt.Sprintf("checkout-abc.%d", i)),
		attribute.String(schema.AttrK8sEventReason, "BackOff"),
		attribute.String(schema.AttrK8sNamespaceName, "shop"),
		attribute.String(schema.AttrK8sObjectKind, "Pod"),
		attribute.String(schema.AttrK8sObjectName, "checkout-7d9f8b6c5-x2x4k"),
		attribute.String(schema.AttrK8sEventType, "Warning"),
		attribute.Int(schema.AttrK8sEventCount, 3),
	)
	s.logger.Emit(context.Background(), r)
}

// appLine emits one application log line; pod identity is on the resource, as the
// k8s_attributes processor or the filelog receiver puts it.
func (s *sender) appLine(msg string, sev otellog.Severity) {
	var r otellog.Record
	r.SetTimestamp(time.Now())
	r.SetSeverity(sev)
	r.SetBody(attribute.StringValue(msg))
	s.logger.Emit(context.Background(), r)
}

func (s *sender) flush(t *testing.T) {
	t.Helper()
	require.NoError(t, s.lp.ForceFlush(testCtx(t, 30*time.Second)))
}

func podResource(pod string) []attribute.KeyValue {
	return []attribute.KeyValue{
		attribute.String(schema.AttrK8sNamespaceName, "shop"),
		attribute.String(schema.AttrK8sPodName, pod),
		attribute.String(schema.AttrK8sContainerName, "app"),
	}
}
