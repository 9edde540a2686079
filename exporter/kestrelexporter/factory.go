package kestrelexporter // import "github.com/kestrelai/otelcol-kestrel/exporter/kestrelexporter"

import (
	"context"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/config/configretry"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/exporterhelper"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/kestrelai/otelcol-kestrel/exporter/kestrelexporter/internal/metadata"
)

// defaultConnection is the kestrel_command extension's type, the ID it has when unnamed.
var defaultConnection = component.MustNewID("kestrel_command")

// NewFactory returns the factory of the kestrel exporter.
func NewFactory() exporter.Factory {
	return exporter.NewFactory(
		metadata.Type,
		createDefaultConfig,
		exporter.WithLogs(createLogs, metadata.LogsStability),
	)
}

func createDefaultConfig() component.Config {
	// Events that happen while Kestrel Cloud is unreachable wait in the queue until it is
	// back: retried without a deadline, bounded by the queue, counted when it is full.
	retry := configretry.NewDefaultBackOffConfig()
	retry.MaxElapsedTime = 0
	return &Config{
		Connection:             defaultConnection,
		InitialSnapshotTimeout: 2 * time.Minute,
		TimeoutConfig:          exporterhelper.NewDefaultTimeoutConfig(),
		QueueConfig:            configoptional.Some(defaultQueueConfig()),
		RetryConfig:            retry,
	}
}

// Queue defaults: bounded in bytes, so that an outage fills it at a known memory cost
// whatever the record sizes, refusing (not blocking) when full so that the error reaches
// the sender as retryable; and batching in the queue's consumers, which replaces the batch
// processor: nothing holds accepted data in front of the queue.
const (
	defaultQueueBytes    = 64 << 20
	defaultBatchMinBytes = 256 << 10
	defaultBatchMaxBytes = 4 << 20
	defaultBatchFlush    = 200 * time.Millisecond
)

func defaultQueueConfig() exporterhelper.QueueBatchConfig {
	q := exporterhelper.NewDefaultQueueConfig()
	q.Sizer = exporterhelper.RequestSizerTypeBytes
	q.QueueSize = defaultQueueBytes
	q.BlockOnOverflow = false
	batch := exporterhelper.NewDefaultBatchConfig()
	batch.Sizer = exporterhelper.RequestSizerTypeBytes
	batch.MinSize = defaultBatchMinBytes
	batch.MaxSize = defaultBatchMaxBytes
	batch.FlushTimeout = defaultBatchFlush
	q.Batch = configoptional.Some(batch)
	return q
}

func createLogs(ctx context.Context, set exporter.Settings, cfg component.Config) (exporter.Logs, error) {
	c := cfg.(*Config)
	exp, err := newExporter(c, set)
	if err != nil {
		return nil, err
	}
	inner, err := exporterhelper.NewLogs(ctx, set, cfg,
		exp.pushLogs,
		exporterhelper.WithCapabilities(consumer.Capabilities{MutatesData: false}),
		exporterhelper.WithTimeout(c.TimeoutConfig),
		exporterhelper.WithRetry(c.RetryConfig),
		exporterhelper.WithQueue(c.QueueConfig),
		exporterhelper.WithStart(exp.start),
		exporterhelper.WithShutdown(exp.shutdown),
	)
	if err != nil {
		return nil, err
	}
	return &logsExporter{Logs: inner, exp: exp}, nil
}

// logsExporter takes inventory records out of the data before it reaches the
// exporterhelper queue: they update the inventory mirror, which sends them itself (see
// mirror.go), so an object's states can neither be reordered by concurrent queue
// consumers nor dropped by a full queue.
type logsExporter struct {
	exporter.Logs
	exp *kestrelExporter
}

func (l *logsExporter) ConsumeLogs(ctx context.Context, ld plog.Logs) error {
	rest := l.exp.mirror.absorb(ctx, l.exp.mapper, ld)
	if rest.LogRecordCount() == 0 {
		return nil
	}
	return l.Logs.ConsumeLogs(ctx, rest)
}
