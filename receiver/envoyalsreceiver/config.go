package envoyalsreceiver // import "github.com/kestrelai/otelcol-kestrel/receiver/envoyalsreceiver"

import (
	"errors"
	"fmt"
	"strings"

	"go.opentelemetry.io/collector/config/configgrpc"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/confmap"

	"github.com/kestrelai/otelcol-kestrel/internal/flowagg"
	"github.com/kestrelai/otelcol-kestrel/internal/k8sapi"
)

// Config is the envoy_access_log receiver's configuration. The gRPC server settings
// (endpoint, tls, max_recv_msg_size_mib, max_concurrent_streams, keepalive, auth, ...) are
// squashed in from configgrpc.
type Config struct {
	configgrpc.ServerConfig `mapstructure:",squash"`

	// Headers says which logged HTTP headers become attributes.
	Headers HeadersConfig `mapstructure:"headers"`

	// Aggregation configures the window access-log entries are aggregated over.
	Aggregation flowagg.Config `mapstructure:"aggregation"`

	// Kubernetes, when present, resolves each sidecar's pod to its workload through the
	// Kubernetes API (pods, ReplicaSets and Jobs, watched once per process and shared with
	// k8s_inventory). Without it, or for a pod the API does not know yet, the workload comes
	// from Istio's OWNER metadata or the pod's name.
	Kubernetes configoptional.Optional[k8sapi.Config] `mapstructure:"kubernetes"`

	// prevent unkeyed literal initialization
	_ struct{}
}

// HeadersConfig filters the headers Envoy logs (additional_request_headers_to_log and friends).
// A header becomes an attribute only if its name is on the allowlist; if its name is also
// redacted, its value is replaced with "REDACTED", so its presence still shows.
type HeadersConfig struct {
	// Request and Response are the allowlists of header names (case-insensitive).
	Request  []string `mapstructure:"request"`
	Response []string `mapstructure:"response"`
	// Redact lists header names whose values are never kept.
	Redact []string `mapstructure:"redact"`
	// RedactContaining redacts every header whose name contains one of these substrings,
	// which catches custom credentials such as x-github-token.
	RedactContaining []string `mapstructure:"redact_containing"`
	// MaxValueLength truncates longer values (bytes).
	MaxValueLength int `mapstructure:"max_value_length"`

	// prevent unkeyed literal initialization
	_ struct{}
}

var _ confmap.Validator = (*Config)(nil)

// Validate checks what the embedded configs do not; they validate themselves.
func (cfg *Config) Validate() error {
	var errs []error
	if cfg.NetAddr.Endpoint == "" {
		errs = append(errs, errors.New("endpoint must be set, e.g. 0.0.0.0:8080"))
	}
	if err := cfg.Aggregation.Check("aggregation"); err != nil {
		errs = append(errs, err)
	}
	if cfg.MaxRecvMsgSizeMiB <= 0 {
		errs = append(errs, fmt.Errorf("max_recv_msg_size_mib must be positive, got %d", cfg.MaxRecvMsgSizeMiB))
	}
	if cfg.MaxConcurrentStreams == 0 {
		errs = append(errs, errors.New("max_concurrent_streams must be positive"))
	}
	if cfg.Headers.MaxValueLength <= 0 {
		errs = append(errs, fmt.Errorf("headers::max_value_length must be positive, got %d", cfg.Headers.MaxValueLength))
	}
	for key, names := range map[string][]string{
		"headers::request": cfg.Headers.Request, "headers::response": cfg.Headers.Response,
		"headers::redact": cfg.Headers.Redact, "headers::redact_containing": cfg.Headers.RedactContaining,
	} {
		for _, n := range names {
			if n == "" || strings.ContainsAny(n, " \t\r\n:") {
				errs = append(errs, fmt.Errorf("%s: %q is not a header name", key, n))
			}
		}
	}
	return errors.Join(errs...)
}
