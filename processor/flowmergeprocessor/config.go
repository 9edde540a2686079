package flowmergeprocessor // import "github.com/kestrelai/otelcol-kestrel/processor/flowmergeprocessor"

import (
	"errors"
	"fmt"
	"time"

	"go.opentelemetry.io/collector/confmap"

	"github.com/kestrelai/otelcol-kestrel/internal/flowagg"
)

// Config is the flow_merge processor configuration: the same window settings as the hubble
// receiver's aggregation section.
type Config struct {
	// Window is the merge window. Windows are aligned to the wall clock (a 30 s window ends at
	// :00 and :30), so every gateway replica and restart cuts at the same instants. 0 merges
	// nothing: with one sender (the chart's relay agent) each aggregate is complete already and
	// passes on as it arrives, recorded in the flow graph, and nothing is held.
	// MaxEntries bounds the distinct keys of one window; a window that reaches it is emitted
	// early, so no aggregate is ever dropped.
	flowagg.Config `mapstructure:",squash"`
}

var _ confmap.Validator = (*Config)(nil)

// Validate checks the window and the key bound.
func (cfg *Config) Validate() error {
	var errs []error
	if cfg.Window != 0 && cfg.Window < 10*time.Millisecond {
		errs = append(errs, fmt.Errorf("window must be 0 (no merging) or at least 10ms, got %v", cfg.Window))
	}
	if cfg.MaxEntries <= 0 {
		errs = append(errs, fmt.Errorf("max_entries must be positive, got %d", cfg.MaxEntries))
	}
	return errors.Join(errs...)
}
