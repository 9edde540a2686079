package kestrelcommand // import "github.com/kestrelai/otelcol-kestrel/extension/kestrelcommand"

import (
	"context"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/configgrpc"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/extension"

	"github.com/kestrelai/otelcol-kestrel/extension/kestrelcommand/internal/metadata"
	// The distribution's GOMEMLIMIT from the container's memory limit: linked with the
	// extension, which every build of the distribution has.
	_ "github.com/kestrelai/otelcol-kestrel/internal/gomemlimit"
	"github.com/kestrelai/otelcol-kestrel/internal/k8sapi"
	"github.com/kestrelai/otelcol-kestrel/internal/selflog"
)

// NewFactory returns the kestrel_command extension factory.
func NewFactory() extension.Factory {
	return extension.NewFactory(metadata.Type, createDefaultConfig, createExtension, metadata.ExtensionStability)
}

func createDefaultConfig() component.Config {
	grpcCfg := configgrpc.NewDefaultClientConfig()
	grpcCfg.TLS.MinVersion = "1.2"
	// Matches the Kestrel operator: HTTP/2 pings every 5 minutes are enough because the
	// server sends heartbeats on every stream; faster pings get throttled by servers.
	grpcCfg.Keepalive = configoptional.Some(configgrpc.KeepaliveClientConfig{
		Time:                5 * time.Minute,
		Timeout:             30 * time.Second,
		PermitWithoutStream: true,
	})
	// All five streams must share one HTTP/2 connection to one server: the server ties
	// the side streams to the StreamData session. round_robin could spread them.
	grpcCfg.BalancerName = "pick_first"
	return &Config{
		ClientConfig: grpcCfg,
		Token: TokenConfig{
			EnvVar:        "AUTH_TOKEN",
			RenewAt:       0.8,
			PersistSecret: TokenSecretConfig{Key: "token", SecretRef: SecretRef{Timeout: 10 * time.Second}},
		},
		Reconnect: ReconnectConfig{
			InitialInterval: time.Second,
			Multiplier:      1.5,
			// Seconds, not a minute: the connection is back within seconds of the cloud,
			// and one cluster retrying every few seconds costs the cloud one TLS handshake.
			MaxInterval:         5 * time.Second,
			RandomizationFactor: 0.2,
			ResetAfter:          time.Minute,
		},
		MaxMessageSizeMiB:     10,
		MaxConcurrentRequests: 16,
		CertificateRenewal: CertificateRenewalConfig{Enabled: true, MaxClockSkew: 5 * time.Minute,
			Secret: SecretConfig{CertKey: "tls.crt", KeyKey: "tls.key", SecretRef: SecretRef{Timeout: 10 * time.Second}}},
		Kubernetes:    k8sapi.Default(),
		StallTimeout:  30 * time.Second,
		StatsInterval: time.Minute,
		// As the original operator: batches of up to 100 entries, at least every 5 s.
		SelfLogs: SelfLogsConfig{
			Enabled:       true,
			RatePerSecond: selflog.DefaultRate,
			Burst:         selflog.DefaultBurst,
			MaxBuffered:   selflog.DefaultCapacity,
			FlushInterval: 5 * time.Second,
			ContainerName: "otelcol-kestrel",
		},
	}
}

func createExtension(_ context.Context, set extension.Settings, cfg component.Config) (extension.Extension, error) {
	return newExtension(cfg.(*Config), set)
}
