package hubblereceiver // import "github.com/kestrelai/otelcol-kestrel/receiver/hubblereceiver"

import (
	"context"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/receiver"

	"github.com/kestrelai/otelcol-kestrel/internal/flowagg"
	"github.com/kestrelai/otelcol-kestrel/internal/hubblerelay"
	"github.com/kestrelai/otelcol-kestrel/receiver/hubblereceiver/internal/metadata"
)

// NewFactory returns the factory of the hubble receiver.
func NewFactory() receiver.Factory {
	return receiver.NewFactory(
		metadata.Type,
		createDefaultConfig,
		receiver.WithLogs(createLogs, metadata.LogsStability),
	)
}

func createDefaultConfig() component.Config {
	return &Config{
		ClientConfig: hubblerelay.NewDefaultClientConfig(),
		Enabled:      true,
		Aggregation:  flowagg.NewDefaultConfig(),
		// The operator's backoff: 1 s × 1.5ⁿ up to 60 s, ±20 %.
		Reconnect: ReconnectConfig{
			InitialInterval:     time.Second,
			MaxInterval:         time.Minute,
			Multiplier:          1.5,
			RandomizationFactor: 0.2,
		},
		ResumeOverlap: 2 * time.Second,
	}
}

func createLogs(_ context.Context, set receiver.Settings, cfg component.Config, next consumer.Logs) (receiver.Logs, error) {
	return newReceiver(cfg.(*Config), set, next)
}
