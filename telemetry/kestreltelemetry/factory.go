// Package kestreltelemetry is otelcol-kestrel's internal-telemetry factory: the collector's
// own otelconftelemetry (the same `service::telemetry` configuration, logger, meter and
// tracer providers) with one addition: the service logger also copies its warning and
// error entries into a bounded, rate-limited internal/selflog Buffer, from which the
// kestrel_command extension sends them to Kestrel Cloud as PodLogs of the collector's pod.
//
// It is the distribution's `telemetry` module in builder-config.yaml, so every component's
// logger is covered, and the collector's shutdown order does not matter: nothing is
// exported through the pipelines.
package kestreltelemetry // import "github.com/kestrelai/otelcol-kestrel/telemetry/kestreltelemetry"

import (
	"context"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/service/telemetry"
	"go.opentelemetry.io/collector/service/telemetry/otelconftelemetry"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/kestrelai/otelcol-kestrel/internal/selflog"
)

// NewFactory returns the telemetry factory.
func NewFactory() telemetry.Factory {
	inner := otelconftelemetry.NewFactory()
	return telemetry.NewFactory(inner.CreateDefaultConfig,
		telemetry.WithCreateResource(inner.CreateResource),
		telemetry.WithCreateLogger(func(ctx context.Context, set telemetry.LoggerSettings, cfg component.Config) (*zap.Logger, component.ShutdownFunc, error) {
			logger, shutdown, err := inner.CreateLogger(ctx, set, cfg)
			if err != nil || set.Resource == nil {
				return logger, shutdown, err
			}
			buf := selflog.NewBuffer()
			unregister := selflog.Register(*set.Resource, buf)
			logger = logger.WithOptions(zap.WrapCore(selflog.WrapCore(buf, zapcore.WarnLevel)))
			return logger, func(ctx context.Context) error {
				unregister()
				return shutdown.Shutdown(ctx)
			}, nil
		}),
		telemetry.WithCreateMeterProvider(inner.CreateMeterProvider),
		telemetry.WithCreateTracerProvider(inner.CreateTracerProvider),
	)
}
