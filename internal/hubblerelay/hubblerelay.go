// Package hubblerelay is the one home of how our components reach Hubble Relay: the hubble
// receiver (which follows flows) and the kestrel_tools receiver's `hubble observe` (which
// reads recent flows) configure the same configgrpc client with the same defaults.
package hubblerelay // import "github.com/kestrelai/otelcol-kestrel/internal/hubblerelay"

import (
	"time"

	"go.opentelemetry.io/collector/config/configgrpc"
	"go.opentelemetry.io/collector/config/configoptional"
)

// DefaultEndpoint is Hubble Relay's Service with TLS enabled (Cilium's default Helm values
// serve TLS on 443 and plaintext on 80).
const DefaultEndpoint = "hubble-relay.kube-system.svc:443"

// DefaultKeepalive is what Hubble Relay accepts: it runs grpc-go's default server
// enforcement policy, which allows a ping no more often than every 5 minutes and only while
// a stream is open, and answers more with GOAWAY too_many_pings. configgrpc's default (a ping
// every 10 s) had Relay close an idle stream after about 30 s.
var DefaultKeepalive = configgrpc.KeepaliveClientConfig{Time: 5 * time.Minute, Timeout: 20 * time.Second}

// NewDefaultClientConfig is the Relay client configuration both components start from:
// configgrpc's defaults (TLS on) with DefaultEndpoint and DefaultKeepalive.
func NewDefaultClientConfig() configgrpc.ClientConfig {
	c := configgrpc.NewDefaultClientConfig()
	c.Endpoint = DefaultEndpoint
	c.Keepalive = configoptional.Some(DefaultKeepalive)
	return c
}
