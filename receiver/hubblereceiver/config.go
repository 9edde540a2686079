package hubblereceiver // import "github.com/kestrelai/otelcol-kestrel/receiver/hubblereceiver"

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	flowpb "github.com/cilium/cilium/api/v1/flow"
	"go.opentelemetry.io/collector/config/configgrpc"
	"go.opentelemetry.io/collector/confmap"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/kestrelai/otelcol-kestrel/internal/flowagg"
)

// Config is the hubble receiver's configuration. The gRPC client settings for Hubble Relay
// (endpoint, tls, keepalive, headers, ...) are squashed in from configgrpc.
type Config struct {
	configgrpc.ClientConfig `mapstructure:",squash"`

	// Enabled switches flow collection on. The environment variable DISABLE_CILIUM_FLOWS=true
	// switches it off as well, as it did for the Kestrel operator.
	Enabled bool `mapstructure:"enabled"`

	// Allowlist and Denylist are Hubble FlowFilters in their JSON form (the same filters as
	// `hubble observe --allowlist/--denylist`), e.g. {verdict: [DROPPED], source_pod: [shop/]}.
	// Relay applies them: a flow is sent if it matches any allowlist filter (or there is none)
	// and no denylist filter.
	Allowlist []map[string]any `mapstructure:"allowlist"`
	Denylist  []map[string]any `mapstructure:"denylist"`

	// Aggregation configures the window flows are aggregated over.
	Aggregation flowagg.Config `mapstructure:"aggregation"`

	// Reconnect configures the jittered exponential backoff between GetFlows attempts.
	Reconnect ReconnectConfig `mapstructure:"reconnect"`

	// ResumeOverlap is how far before the last flow received a reconnect asks Relay to resume
	// ("since"). Relay merges the nodes' flows in time order only within a short buffer, so a
	// flow older than the last one received may still arrive; the overlap re-requests those,
	// and flows that were already received are recognised by their UUID and skipped.
	ResumeOverlap time.Duration `mapstructure:"resume_overlap"`

	// prevent unkeyed literal initialization
	_ struct{}
}

// ReconnectConfig configures the backoff between GetFlows attempts.
type ReconnectConfig struct {
	InitialInterval     time.Duration `mapstructure:"initial_interval"`
	MaxInterval         time.Duration `mapstructure:"max_interval"`
	Multiplier          float64       `mapstructure:"multiplier"`
	RandomizationFactor float64       `mapstructure:"randomization_factor"`

	// prevent unkeyed literal initialization
	_ struct{}
}

var _ confmap.Validator = (*Config)(nil)

// Validate checks what the embedded configs do not; they validate themselves.
func (cfg *Config) Validate() error {
	var errs []error
	if cfg.Endpoint == "" {
		errs = append(errs, errors.New("endpoint must be set, e.g. hubble-relay.kube-system.svc:443"))
	}
	if err := cfg.Aggregation.Check("aggregation"); err != nil {
		errs = append(errs, err)
	}
	if _, err := parseFilters("allowlist", cfg.Allowlist); err != nil {
		errs = append(errs, err)
	}
	if _, err := parseFilters("denylist", cfg.Denylist); err != nil {
		errs = append(errs, err)
	}
	r := cfg.Reconnect
	if r.InitialInterval <= 0 {
		errs = append(errs, fmt.Errorf("reconnect::initial_interval must be positive, got %v", r.InitialInterval))
	}
	if r.MaxInterval < r.InitialInterval {
		errs = append(errs, fmt.Errorf("reconnect::max_interval (%v) must not be less than reconnect::initial_interval (%v)", r.MaxInterval, r.InitialInterval))
	}
	if r.Multiplier < 1 {
		errs = append(errs, fmt.Errorf("reconnect::multiplier must be at least 1, got %v", r.Multiplier))
	}
	if r.RandomizationFactor < 0 || r.RandomizationFactor >= 1 {
		errs = append(errs, fmt.Errorf("reconnect::randomization_factor must be in [0, 1), got %v", r.RandomizationFactor))
	}
	if cfg.ResumeOverlap < 0 {
		errs = append(errs, fmt.Errorf("resume_overlap must not be negative, got %v", cfg.ResumeOverlap))
	}
	return errors.Join(errs...)
}

// maxFilterJSON bounds one filter's size: filters are small, and protojson would otherwise
// spend time and memory on a hostile configuration.
const maxFilterJSON = 64 << 10

// parseFilters converts the configured filters to Hubble FlowFilters through their JSON form,
// which protojson checks strictly: unknown fields and wrong types are errors.
func parseFilters(key string, raw []map[string]any) ([]*flowpb.FlowFilter, error) {
	out := make([]*flowpb.FlowFilter, 0, len(raw))
	for i, m := range raw {
		b, err := json.Marshal(m)
		if err != nil {
			return nil, fmt.Errorf("%s[%d]: %w", key, i, err)
		}
		if len(b) > maxFilterJSON {
			return nil, fmt.Errorf("%s[%d]: filter is larger than %d bytes", key, i, maxFilterJSON)
		}
		f := &flowpb.FlowFilter{}
		if err := protojson.Unmarshal(b, f); err != nil {
			return nil, fmt.Errorf("%s[%d]: not a Hubble FlowFilter: %w", key, i, err)
		}
		out = append(out, f)
	}
	return out, nil
}
