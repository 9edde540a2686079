package envoyalsreceiver // import "github.com/kestrelai/otelcol-kestrel/receiver/envoyalsreceiver"

import (
	"context"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/configgrpc"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/receiver"

	"github.com/kestrelai/otelcol-kestrel/internal/flowagg"
	"github.com/kestrelai/otelcol-kestrel/internal/k8sapi"
	"github.com/kestrelai/otelcol-kestrel/receiver/envoyalsreceiver/internal/metadata"
)

// NewFactory returns the factory of the envoy_access_log receiver.
func NewFactory() receiver.Factory {
	return receiver.NewFactory(
		metadata.Type,
		createDefaultConfig,
		receiver.WithLogs(func(_ context.Context, set receiver.Settings, cfg component.Config, next consumer.Logs) (receiver.Logs, error) {
			return newReceiver(cfg.(*Config), set, next)
		}, metadata.LogsStability),
	)
}

func createDefaultConfig() component.Config {
	server := configgrpc.NewDefaultServerConfig()
	// The Kestrel operator's ALS port; the chart's kestrel-operator-als Service targets it.
	server.NetAddr.Endpoint = "localhost:8080"
	// Envoy flushes its access-log buffer at 16 KiB by default, so messages are small.
	server.MaxRecvMsgSizeMiB = 4
	// Envoy opens one stream per access log and worker thread on each connection.
	server.MaxConcurrentStreams = 100
	return &Config{
		ServerConfig: server,
		Headers: HeadersConfig{
			Request:  []string{"content-type", "x-request-id", "traceparent", "x-forwarded-proto", "x-envoy-attempt-count"},
			Response: []string{"content-type", "grpc-status", "server"},
			Redact: []string{
				"authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key",
				"x-auth-token", "x-access-token", "x-csrf-token", "x-xsrf-token", "x-amz-security-token",
			},
			RedactContaining: []string{"token", "secret", "password", "passwd", "api-key", "apikey", "auth", "cookie", "session", "credential"},
			MaxValueLength:   256,
		},
		Aggregation: flowagg.NewDefaultConfig(),
		// Off unless the kubernetes section is present.
		Kubernetes: configoptional.Default(k8sapi.Default()),
	}
}
