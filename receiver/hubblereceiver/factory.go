package hubblereceiver // import "github.com/kestrelai/otelcol-kestrel/receiver/hubblereceiver"

import (
	"context"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/configgrpc"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/receiver"

	"github.com/kestrelai/otelcol-kestrel/internal/flowagg"
	"github.com/kestrelai/otelcol-kestrel/receiver/hubblereceiver/internal/metadata"
)

// defaultEndpoint is Hubble Relay's Service with TLS enabled (Cilium's default Helm values
// serve TLS on 443 and plaintext on 80).
const defaultEndpoint = "hubble-relay.kube-system.svc:443"

// defaultKeepalive is what Hubble Relay accepts: it runs grpc-go's default server
// enforcement policy, which allows a ping no more often than every 5 minutes and only while
// a stream is open, and answers more with GOAWAY too_many_pings. configgrpc's default (a ping
// every 10 s) had Relay close an idle stream after about 30 s. The GetFlows stream is open
// whenever the connection is, so no pings are needed without one.
var defaultKeepalive = configgrpc.KeepaliveClientConfig{Time: 5 * time.Minute, Timeout: 20 * time.Second}

// NewFactory returns the factory of the hubble receiver.
func NewFactory() receiver.Factory {
	return receiver.NewFactory(
		metadata.Type,
		createDefaultConfig,
		receiver.WithLogs(createLogs, metadata.LogsStability),
	)
}

func createDefaultConfig() component.Config {
	client := configgrpc.NewDefaultClientConfig()
	client.Endpoint = defaultEndpoint
	client.Keepalive = configoptional.Some(defaultKeepalive)
	return &Config{
		ClientConfig: client,
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
