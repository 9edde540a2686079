package kestrelcommand // import "github.com/kestrelai/otelcol-kestrel/extension/kestrelcommand"

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"go.opentelemetry.io/collector/config/configgrpc"
	"go.opentelemetry.io/collector/confmap"

	"github.com/kestrelai/otelcol-kestrel/internal/k8sapi"
)

// Config is the kestrel_command extension configuration. The gRPC client settings
// (endpoint, tls, keepalive, headers, ...) are squashed in from configgrpc.
type Config struct {
	configgrpc.ClientConfig `mapstructure:",squash"`

	// Token configures where the cluster's bearer token (a JWT) comes from and how it
	// is renewed.
	Token TokenConfig `mapstructure:"token"`

	// Reconnect configures the jittered exponential backoff between connection attempts.
	Reconnect ReconnectConfig `mapstructure:"reconnect"`

	// MaxMessageSizeMiB caps the size of a single gRPC message in both directions.
	MaxMessageSizeMiB int `mapstructure:"max_message_size_mib"`

	// MaxConcurrentRequests caps how many cloud requests run their handlers at once.
	MaxConcurrentRequests int `mapstructure:"max_concurrent_requests"`

	// CertificateRenewal configures CertificateRenewalRequest.
	CertificateRenewal CertificateRenewalConfig `mapstructure:"certificate_renewal"`

	// Kubernetes is how the extension reaches the apiserver (auth_type, context); used only
	// when certificate_renewal::secret or token::persist_secret is set.
	Kubernetes k8sapi.Config `mapstructure:"kubernetes"`

	// StallTimeout is how long a write to any stream may stay blocked (the server accepted
	// the connection but stopped reading, so flow control holds the write) before the
	// connection is reported degraded and recycled.
	StallTimeout time.Duration `mapstructure:"stall_timeout"`

	// StatsInterval is how often OperatorStats (the agent's memory, CPU, stream health and
	// message counters) goes to the cloud while connected. 0 sends none.
	StatsInterval time.Duration `mapstructure:"stats_interval"`

	// SelfLogs configures how the collector's own warnings and errors go to the cloud.
	SelfLogs SelfLogsConfig `mapstructure:"self_logs"`

	// prevent unkeyed literal initialization
	_ struct{}
}

// SelfLogsConfig configures the collector's own warning and error log entries sent to the
// cloud as PodLogs of its pod (the distribution's telemetry factory captures them).
type SelfLogsConfig struct {
	Enabled bool `mapstructure:"enabled"`
	// RatePerSecond and Burst are a token bucket over captured entries: what it refuses
	// (and what does not fit in MaxBuffered) is counted and reported in one summary line.
	RatePerSecond float64 `mapstructure:"rate_per_second"`
	Burst         int     `mapstructure:"burst"`
	// MaxBuffered bounds the entries held while they wait (e.g. while disconnected).
	MaxBuffered int `mapstructure:"max_buffered"`
	// FlushInterval is the longest an entry waits; a full batch goes at once.
	FlushInterval time.Duration `mapstructure:"flush_interval"`
	// The pod the entries belong to (the chart sets these from the downward API). An
	// empty pod_name means the host name, which is the pod's name in Kubernetes.
	PodName       string `mapstructure:"pod_name"`
	Namespace     string `mapstructure:"namespace"`
	PodUID        string `mapstructure:"pod_uid"`
	NodeName      string `mapstructure:"node_name"`
	ContainerName string `mapstructure:"container_name"`

	// prevent unkeyed literal initialization
	_ struct{}
}

func (sc *SelfLogsConfig) validate() []error {
	if !sc.Enabled {
		return nil
	}
	var errs []error
	if sc.RatePerSecond <= 0 {
		errs = append(errs, fmt.Errorf("self_logs::rate_per_second must be positive, got %v", sc.RatePerSecond))
	}
	if sc.Burst <= 0 {
		errs = append(errs, fmt.Errorf("self_logs::burst must be positive, got %d", sc.Burst))
	}
	if sc.MaxBuffered < sc.Burst {
		errs = append(errs, fmt.Errorf("self_logs::max_buffered (%d) must not be less than self_logs::burst (%d)", sc.MaxBuffered, sc.Burst))
	}
	if sc.FlushInterval <= 0 {
		errs = append(errs, fmt.Errorf("self_logs::flush_interval must be positive, got %v", sc.FlushInterval))
	}
	return errs
}

// TokenConfig configures the bearer token.
type TokenConfig struct {
	// File holds the token (e.g. a mounted Secret). Tried before EnvVar.
	File string `mapstructure:"file"`
	// EnvVar names the environment variable holding the token.
	EnvVar string `mapstructure:"env_var"`
	// PersistFile, if set, receives every renewed token (mode 0600) and is read at
	// startup, where a newer token of the same tenant wins over the configured one.
	PersistFile string `mapstructure:"persist_file"`
	// PersistSecret, if set, is a Secret that receives every renewed token through the
	// Kubernetes API and is read at startup like PersistFile (see tokensecret.go).
	PersistSecret TokenSecretConfig `mapstructure:"persist_secret"`
	// RenewAt is the fraction of the token's lifetime after which it is renewed.
	RenewAt float64 `mapstructure:"renew_at"`

	// prevent unkeyed literal initialization
	_ struct{}
}

// CertificateRenewalConfig configures how the cloud's certificate renewals are taken.
type CertificateRenewalConfig struct {
	// Enabled lets a validated new pair replace tls::cert_file and tls::key_file.
	Enabled bool `mapstructure:"enabled"`
	// MaxClockSkew is how far in the future a new certificate's validity may start.
	MaxClockSkew time.Duration `mapstructure:"max_clock_skew"`
	// Secret, when set, is where a validated pair is written instead of the files: the
	// Secret mounted at tls::cert_file and tls::key_file (see certsecret.go).
	Secret SecretConfig `mapstructure:"secret"`

	// prevent unkeyed literal initialization
	_ struct{}
}

// ReconnectConfig configures the backoff between connection attempts.
type ReconnectConfig struct {
	InitialInterval     time.Duration `mapstructure:"initial_interval"`
	Multiplier          float64       `mapstructure:"multiplier"`
	MaxInterval         time.Duration `mapstructure:"max_interval"`
	RandomizationFactor float64       `mapstructure:"randomization_factor"`
	// ResetAfter is how long a connection must stay Ready before the backoff starts
	// over from InitialInterval.
	ResetAfter time.Duration `mapstructure:"reset_after"`

	// prevent unkeyed literal initialization
	_ struct{}
}

var _ confmap.Validator = (*Config)(nil)

// Validate checks the configuration. The nested gRPC client and TLS settings are
// validated by confmap on their own.
func (cfg *Config) Validate() error {
	var errs []error
	if cfg.Endpoint == "" {
		errs = append(errs, errors.New("endpoint must be set (e.g. grpc.platform.usekestrel.ai:443)"))
	}
	if cfg.TLS.Insecure {
		errs = append(errs, errors.New("tls::insecure must not be true: the bearer token is never sent in clear text"))
	}
	if cfg.TLS.CertFile == "" && cfg.TLS.CertPem == "" {
		errs = append(errs, errors.New("tls::cert_file (or tls::cert_pem) must be set: Kestrel Cloud authenticates the cluster with a client certificate"))
	}
	if cfg.TLS.KeyFile == "" && cfg.TLS.KeyPem == "" {
		errs = append(errs, errors.New("tls::key_file (or tls::key_pem) must be set"))
	}
	if cfg.Token.File == "" && cfg.Token.EnvVar == "" {
		errs = append(errs, errors.New("token::file or token::env_var must be set"))
	}
	if cfg.Token.RenewAt <= 0 || cfg.Token.RenewAt >= 1 {
		errs = append(errs, fmt.Errorf("token::renew_at must be between 0 and 1 (exclusive), got %v", cfg.Token.RenewAt))
	}
	if cfg.MaxMessageSizeMiB <= 0 || cfg.MaxMessageSizeMiB > 1024 {
		errs = append(errs, fmt.Errorf("max_message_size_mib must be between 1 and 1024, got %d", cfg.MaxMessageSizeMiB))
	}
	if cfg.MaxConcurrentRequests <= 0 {
		errs = append(errs, fmt.Errorf("max_concurrent_requests must be positive, got %d", cfg.MaxConcurrentRequests))
	}
	if s := cfg.CertificateRenewal.MaxClockSkew; s < 0 || s > time.Hour {
		errs = append(errs, fmt.Errorf("certificate_renewal::max_clock_skew must be between 0 and 1h, got %v", s))
	}
	if cfg.StallTimeout <= 0 {
		errs = append(errs, fmt.Errorf("stall_timeout must be positive, got %v", cfg.StallTimeout))
	}
	if cfg.StatsInterval < 0 {
		errs = append(errs, fmt.Errorf("stats_interval must not be negative, got %v", cfg.StatsInterval))
	}
	errs = append(errs, cfg.Reconnect.validate()...)
	errs = append(errs, cfg.SelfLogs.validate()...)
	errs = append(errs, cfg.CertificateRenewal.Secret.validate()...)
	errs = append(errs, cfg.Token.PersistSecret.validate()...)
	if cfg.CertificateRenewal.Secret.enabled() && (cfg.TLS.CertFile == "" || cfg.TLS.KeyFile == "") {
		errs = append(errs, errors.New("certificate_renewal::secret needs tls::cert_file and tls::key_file: the files mounted from that Secret"))
	}
	if len(errs) == 0 {
		errs = append(errs, cfg.checkTLSFiles())
	}
	return errors.Join(errs...)
}

// checkTLSFiles loads the CA, certificate and key the way the connection will, so that a
// missing, unreadable or mismatched file fails `validate` and start-up with its name
// instead of a collector that starts, reports healthy and queues for ever.
func (cfg *Config) checkTLSFiles() error {
	for _, f := range []struct{ setting, path string }{
		{"tls::ca_file", cfg.TLS.CAFile},
		{"tls::cert_file", cfg.TLS.CertFile},
		{"tls::key_file", cfg.TLS.KeyFile},
	} {
		if f.path == "" {
			continue
		}
		fh, err := os.Open(filepath.Clean(f.path))
		if err != nil {
			return fmt.Errorf("%s %q cannot be read: %w", f.setting, f.path, err)
		}
		_ = fh.Close()
	}
	if _, err := cfg.TLS.LoadTLSConfig(context.Background()); err != nil {
		return fmt.Errorf("the TLS files do not load (certificate and key must be PEM and belong together): %w", err)
	}
	return nil
}

func (rc *ReconnectConfig) validate() []error {
	var errs []error
	if rc.InitialInterval <= 0 {
		errs = append(errs, fmt.Errorf("reconnect::initial_interval must be positive, got %v", rc.InitialInterval))
	}
	if rc.MaxInterval < rc.InitialInterval {
		errs = append(errs, fmt.Errorf("reconnect::max_interval (%v) must not be less than reconnect::initial_interval (%v)", rc.MaxInterval, rc.InitialInterval))
	}
	if rc.Multiplier < 1 {
		errs = append(errs, fmt.Errorf("reconnect::multiplier must be at least 1, got %v", rc.Multiplier))
	}
	if rc.RandomizationFactor < 0 || rc.RandomizationFactor >= 1 {
		errs = append(errs, fmt.Errorf("reconnect::randomization_factor must be in [0, 1), got %v", rc.RandomizationFactor))
	}
	if rc.ResetAfter <= 0 {
		errs = append(errs, fmt.Errorf("reconnect::reset_after must be positive, got %v", rc.ResetAfter))
	}
	return errs
}
