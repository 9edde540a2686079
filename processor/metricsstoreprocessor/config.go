package metricsstoreprocessor // import "github.com/kestrelai/otelcol-kestrel/processor/metricsstoreprocessor"

import (
	"errors"
	"fmt"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/confmap"

	"github.com/kestrelai/otelcol-kestrel/internal/k8sapi"
)

const (
	mib = 1 << 20
	// maxMessageBytes is the kestrel_command connection's default gRPC message limit
	// (max_message_size_mib: 10); a response also needs room for the stream envelope around it.
	maxMessageBytes  = 10 * mib
	envelopeHeadroom = 1024
	// minResponseBytes leaves room for at least a few series besides the echoed request_id.
	minResponseBytes = 16 << 10
	maxRingSize      = 10_000 // chunks count samples in 16 bits; RingSize plus its slack must fit
)

// Config is the metrics_store processor configuration.
type Config struct {
	// Retention is how long points are kept (by their timestamp).
	Retention time.Duration `mapstructure:"retention"`
	// MaxSeries bounds the number of series; new series beyond it are refused and counted.
	MaxSeries int `mapstructure:"max_series"`
	// RingSize is the number of most recent points kept per series.
	RingSize int `mapstructure:"ring_size"`
	// MaxBytes is the memory budget of the store. Above it, expired points and then the least
	// recently written series are evicted.
	MaxBytes int64 `mapstructure:"max_bytes"`
	// EvictionInterval is how often expired points are removed.
	EvictionInterval time.Duration `mapstructure:"eviction_interval"`
	// MaxResponseBytes caps the marshalled size of a MetricsQueryResponse.
	MaxResponseBytes int `mapstructure:"max_response_bytes"`
	// Connection is the kestrel_command extension that delivers queries from Kestrel Cloud.
	// When it is not configured the store still records metrics.
	Connection component.ID `mapstructure:"connection"`
	// ResourceAttributes are the resource attributes, besides the Kubernetes context, that are
	// part of a series' identity and reported as labels.
	ResourceAttributes []string `mapstructure:"resource_attributes"`
	// Kubernetes, when present, resolves pods to their workloads through the Kubernetes API
	// (pods, ReplicaSets and Jobs, watched once per process and shared with k8s_inventory),
	// for metrics that carry only a pod name. Without it, or for a pod the API does not know,
	// the workload comes from k8s.<kind>.name attributes or the pod's name.
	Kubernetes configoptional.Optional[k8sapi.Config] `mapstructure:"kubernetes"`

	// prevent unkeyed literal initialization
	_ struct{}
}

var _ confmap.Validator = (*Config)(nil)

// Validate checks that every limit is usable.
func (cfg *Config) Validate() error {
	var errs []error
	if cfg.Retention <= 0 {
		errs = append(errs, errors.New("retention must be positive"))
	}
	if cfg.MaxSeries <= 0 {
		errs = append(errs, errors.New("max_series must be positive"))
	}
	if cfg.RingSize <= 0 || cfg.RingSize > maxRingSize {
		errs = append(errs, fmt.Errorf("ring_size must be between 1 and %d", maxRingSize))
	}
	if cfg.MaxBytes < mib {
		errs = append(errs, errors.New("max_bytes must be at least 1 MiB (1048576)"))
	}
	if cfg.EvictionInterval <= 0 {
		errs = append(errs, errors.New("eviction_interval must be positive"))
	}
	if limit := maxMessageBytes - envelopeHeadroom; cfg.MaxResponseBytes < minResponseBytes || cfg.MaxResponseBytes > limit {
		errs = append(errs, fmt.Errorf("max_response_bytes must be between %d and %d (the connection's default 10 MiB message limit minus the envelope)", minResponseBytes, limit))
	}
	if cfg.Connection.Type().String() == "" {
		errs = append(errs, errors.New("connection must name an extension"))
	}
	return errors.Join(errs...)
}
