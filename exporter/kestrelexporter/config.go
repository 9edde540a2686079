package kestrelexporter // import "github.com/kestrelai/otelcol-kestrel/exporter/kestrelexporter"

import (
	"errors"

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
	return nil
}
