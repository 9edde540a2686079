package kestrelexporter // import "github.com/kestrelai/otelcol-kestrel/exporter/kestrelexporter"

import (
	"errors"
	"fmt"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/config/configretry"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/exporter/exporterhelper"
)

// Config is the kestrel exporter's configuration. The connection itself (endpoint, mTLS,
// token) belongs to the kestrel_command extension; the exporter only names it.
type Config struct {
	// Connection is the ID of the kestrel_command extension whose connection carries the data.
	Connection component.ID `mapstructure:"connection"`

	// InitialSnapshotTimeout bounds how long the first InventoryCommit waits for an
	// inventory source (the k8s_inventory receiver) to announce a snapshot; once one has,
	// the commit waits for that snapshot without limit. 0 does not wait for a source that
	// has not announced itself.
	InitialSnapshotTimeout time.Duration `mapstructure:"initial_snapshot_timeout"`

	TimeoutConfig exporterhelper.TimeoutConfig                             `mapstructure:",squash"`
	QueueConfig   configoptional.Optional[exporterhelper.QueueBatchConfig] `mapstructure:"sending_queue"`
	RetryConfig   configretry.BackOffConfig                                `mapstructure:"retry_on_failure"`

	// prevent unkeyed literal initialization
	_ struct{}
}

var _ confmap.Validator = (*Config)(nil)

// Validate checks what the embedded configs do not; they validate themselves.
func (cfg *Config) Validate() error {
	if cfg.Connection.Type().String() == "" {
		return errors.New(`"connection" must name the kestrel_command extension, e.g. kestrel_command`)
	}
	if cfg.InitialSnapshotTimeout < 0 {
		return fmt.Errorf("initial_snapshot_timeout must not be negative, got %v", cfg.InitialSnapshotTimeout)
	}
	return nil
}
