// Package hubblerelay is the one home of how our components reach Hubble Relay: the hubble
// receiver (which follows flows) and the kestrel_tools receiver's `hubble observe` (which
// reads recent flows) configure the same configgrpc client with the same defaults.
package hubblerelay // import "github.com/kestrelai/otelcol-kestrel/internal/hubblerelay"

import "go.opentelemetry.io/collector/config/configgrpc"

// DefaultEndpoint is Hubble Relay's Service with TLS enabled (Cilium's default Helm values
// serve TLS on 443 and plaintext on 80).
const DefaultEndpoint = "hubble-relay.kube-system.svc:443"

// NewDefaultClientConfig is the Relay client configuration both components start from:
// configgrpc's defaults (TLS on) with DefaultEndpoint.
func NewDefaultClientConfig() configgrpc.ClientConfig {
	c := configgrpc.NewDefaultClientConfig()
	c.Endpoint = DefaultEndpoint
	return c
}
