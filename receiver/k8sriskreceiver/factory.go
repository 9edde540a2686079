package k8sriskreceiver // import "github.com/kestrelai/otelcol-kestrel/receiver/k8sriskreceiver"

import (
	"context"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/receiver"

	"github.com/kestrelai/otelcol-kestrel/internal/k8sapi"
	"github.com/kestrelai/otelcol-kestrel/receiver/k8sriskreceiver/internal/metadata"
)

// NewFactory returns the factory of the k8s_risk receiver.
func NewFactory() receiver.Factory {
	return receiver.NewFactory(
		metadata.Type,
		createDefaultConfig,
		receiver.WithLogs(createLogs, metadata.LogsStability),
	)
}

func createDefaultConfig() component.Config {
	return &Config{
		Config:              k8sapi.Default(),
		Namespaces:          NamespacesConfig{Exclude: []string{"kube-system", "kube-public", "kube-node-lease"}},
		Interval:            6 * time.Hour,
		Debounce:            10 * time.Second,
		MaxObjectsPerSecond: 250,
		AttackChains:        AttackChainsConfig{FlowWindow: 24 * time.Hour, Interval: time.Minute},
		PolicyReports:       PolicyReportsConfig{MaxResults: maxReportResults, Interval: 30 * time.Second},
	}
}

func createLogs(_ context.Context, set receiver.Settings, cfg component.Config, next consumer.Logs) (receiver.Logs, error) {
	return newReceiver(cfg.(*Config), set, next)
}
