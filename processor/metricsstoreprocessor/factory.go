package metricsstoreprocessor // import "github.com/kestrelai/otelcol-kestrel/processor/metricsstoreprocessor"

import (
	"context"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/collector/processor/processorhelper"

	"github.com/kestrelai/otelcol-kestrel/internal/k8sapi"
	"github.com/kestrelai/otelcol-kestrel/processor/metricsstoreprocessor/internal/metadata"
)

// NewFactory returns the factory of the metrics_store processor.
func NewFactory() processor.Factory {
	return processor.NewFactory(
		metadata.Type,
		createDefaultConfig,
		processor.WithMetrics(createMetrics, metadata.MetricsStability),
	)
}

func createDefaultConfig() component.Config {
	return &Config{
		Retention:          30 * time.Minute,
		MaxSeries:          100_000,
		RingSize:           60,
		MaxBytes:           64 * mib,
		EvictionInterval:   30 * time.Second,
		MaxResponseBytes:   8 * mib,
		Connection:         component.MustNewID("kestrel_command"),
		ResourceAttributes: []string{"service.name", "service.namespace", "service.instance.id"},
		// Off unless the kubernetes section is present.
		Kubernetes: configoptional.Default(k8sapi.Default()),
	}
}

func createMetrics(ctx context.Context, set processor.Settings, cfg component.Config, next consumer.Metrics) (processor.Metrics, error) {
	p, err := newProcessor(set, cfg.(*Config))
	if err != nil {
		return nil, err
	}
	proc, err := processorhelper.NewMetrics(ctx, set, cfg, next, p.processMetrics,
		processorhelper.WithStart(p.start),
		processorhelper.WithShutdown(p.shutdown),
		processorhelper.WithCapabilities(consumer.Capabilities{MutatesData: false}),
	)
	if err != nil {
		_ = p.shutdown(ctx)
		return nil, err
	}
	return proc, nil
}
