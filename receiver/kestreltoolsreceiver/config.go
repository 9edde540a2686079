package kestreltoolsreceiver // import "github.com/kestrelai/otelcol-kestrel/receiver/kestreltoolsreceiver"

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/configgrpc"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/confmap"
	"k8s.io/apimachinery/pkg/util/validation"

	cloudv1 "github.com/kestrelai/otelcol-kestrel/api/cloud/v1"
	"github.com/kestrelai/otelcol-kestrel/internal/k8sapi"
	"github.com/kestrelai/otelcol-kestrel/receiver/kestreltoolsreceiver/internal/changerequest"
	"github.com/kestrelai/otelcol-kestrel/receiver/kestreltoolsreceiver/internal/integrations"
	"github.com/kestrelai/otelcol-kestrel/receiver/kestreltoolsreceiver/internal/shell"
)

// Config is the kestrel_tools receiver's configuration: one section for everything the
// cloud's tools may do, with safe defaults.
type Config struct {
	// Connection is the kestrel_command extension the requests arrive on.
	Connection component.ID `mapstructure:"connection"`

	// Kubernetes is how the collector reaches the apiserver (auth_type, context).
	Kubernetes k8sapi.Config `mapstructure:"kubernetes"`

	// Identity is who the cloud's reads run as.
	Identity IdentityConfig `mapstructure:"identity"`

	// Limits bound the work of all tools together.
	Limits LimitsConfig `mapstructure:"limits"`

	// KubernetesAPI configures KubernetesAPIRequest.
	KubernetesAPI KubernetesAPIConfig `mapstructure:"kubernetes_api"`

	// Shell configures ShellCommandRequest.
	Shell ShellConfig `mapstructure:"shell"`

	// Changes configures YamlDryRunRequest, YamlApplyRequest and pushed NetworkPolicies.
	Changes ChangesConfig `mapstructure:"changes"`

	// Restart configures OperatorRestartRequest.
	Restart RestartConfig `mapstructure:"restart"`

	// Integrations configures DatadogQueryRequest (Datadog, Argo CD, Argo Rollouts, Flux,
	// Karpenter).
	Integrations IntegrationsConfig `mapstructure:"integrations"`

	// prevent unkeyed literal initialization
	_ struct{}
}

// IntegrationsConfig configures DatadogQueryRequest. Each integration is on when enabled
// here and present in the cluster (its CRDs served, checked at every request).
type IntegrationsConfig struct {
	DefaultTimeout time.Duration `mapstructure:"default_timeout"`
	MaxTimeout     time.Duration `mapstructure:"max_timeout"`
	// MaxResponseBytes caps response_data; a larger answer is refused with 413.
	MaxResponseBytes int `mapstructure:"max_response_bytes"`
	// MaxRequestBytes caps json_body, filter, query and sort; a larger request gets 413.
	MaxRequestBytes int           `mapstructure:"max_request_bytes"`
	ArgoCD          ArgoCDConfig  `mapstructure:"argocd"`
	Rollouts        SwitchConfig  `mapstructure:"rollouts"`
	Flux            SwitchConfig  `mapstructure:"flux"`
	Karpenter       SwitchConfig  `mapstructure:"karpenter"`
	Datadog         DatadogConfig `mapstructure:"datadog"`

	// prevent unkeyed literal initialization
	_ struct{}
}

// DatadogConfig configures the Datadog integration: on when enabled and its keys can be
// read from the Secret.
type DatadogConfig struct {
	Enabled bool `mapstructure:"enabled"`
	// Secret holds the customer's API and application keys; the collector reads it (with its
	// own identity) at every call.
	Secret SecretRef `mapstructure:"secret"`
	// Site is the Datadog site: the API is https://api.<site>.
	Site string `mapstructure:"site"`
	// Endpoint replaces https://api.<site> (a proxy); plain http only to a loopback address.
	Endpoint string `mapstructure:"endpoint"`
	// MonitorPollInterval is how often the monitors are polled for state changes (0: never).
	MonitorPollInterval time.Duration `mapstructure:"monitor_poll_interval"`

	// prevent unkeyed literal initialization
	_ struct{}
}

// SecretRef names a Secret and the keys of its data that hold the Datadog keys.
type SecretRef struct {
	// Namespace is the Secret's namespace; empty means identity::namespace (the collector's).
	Namespace string `mapstructure:"namespace"`
	Name      string `mapstructure:"name"`
	// APIKey and AppKey are the data keys of the API and application keys.
	APIKey string `mapstructure:"api_key"`
	AppKey string `mapstructure:"app_key"`

	// prevent unkeyed literal initialization
	_ struct{}
}

// baseURL is the Datadog API's URL.
func (c *DatadogConfig) baseURL() string {
	if c.Endpoint != "" {
		return c.Endpoint
	}
	return "https://api." + c.Site
}

// SwitchConfig turns an integration on or off.
type SwitchConfig struct {
	Enabled bool `mapstructure:"enabled"`

	// prevent unkeyed literal initialization
	_ struct{}
}

// ArgoCDConfig configures the Argo CD integration.
type ArgoCDConfig struct {
	Enabled bool `mapstructure:"enabled"`
	// Namespace is where Applications are listed and looked up by name alone (Argo CD's
	// namespace, usually argocd); empty means all namespaces the reader may list.
	Namespace string `mapstructure:"namespace"`

	// prevent unkeyed literal initialization
	_ struct{}
}

// ChangesConfig configures the change tools. They run as their own identity, the write
// profile, never as the reader.
type ChangesConfig struct {
	// ServiceAccount is impersonated for every dry-run and apply when
	// identity::impersonate is on (in identity::namespace); off, changes run as the collector.
	ServiceAccount string `mapstructure:"service_account"`
	// Namespace holds the ChangeRequests; empty means identity::namespace (the collector's).
	Namespace string `mapstructure:"namespace"`
	// MaxManifestBytes bounds one manifest's YAML, checked before parsing.
	MaxManifestBytes int          `mapstructure:"max_manifest_bytes"`
	DryRun           DryRunConfig `mapstructure:"dry_run"`
	Apply            ApplyConfig  `mapstructure:"apply"`

	// prevent unkeyed literal initialization
	_ struct{}
}

// DryRunConfig configures YamlDryRunRequest.
type DryRunConfig struct {
	Enabled        bool          `mapstructure:"enabled"`
	DefaultTimeout time.Duration `mapstructure:"default_timeout"`
	MaxTimeout     time.Duration `mapstructure:"max_timeout"`

	// prevent unkeyed literal initialization
	_ struct{}
}

// ApplyConfig configures YamlApplyRequest and pushed NetworkPolicies: both become
// ChangeRequests that a person approves in the cluster.
type ApplyConfig struct {
	// Enabled off (the default): every apply is answered "apply is not enabled in this
	// cluster" and nothing is written.
	Enabled bool `mapstructure:"enabled"`
	// Expiry is how long a ChangeRequest waits for a decision.
	Expiry time.Duration `mapstructure:"expiry"`
	// Timeout bounds applying one approved ChangeRequest.
	Timeout time.Duration `mapstructure:"timeout"`
	// AutoApprove lists changes applied without a decision (still recorded as
	// ChangeRequests and audited).
	AutoApprove []changerequest.Rule `mapstructure:"auto_approve"`

	// prevent unkeyed literal initialization
	_ struct{}
}

// RestartConfig configures OperatorRestartRequest.
type RestartConfig struct {
	// Mode is "" (disabled: the request is refused), "rollout" (patch the pod template of
	// Deployment, a rolling restart) or "exit" (the collector stops with an error and the
	// kubelet restarts its container).
	Mode string `mapstructure:"mode"`
	// Deployment is the collector's own Deployment (in identity::namespace), for rollout.
	Deployment string `mapstructure:"deployment"`
	// MaxDelay caps the request's delay_seconds.
	MaxDelay time.Duration `mapstructure:"max_delay"`

	// prevent unkeyed literal initialization
	_ struct{}
}

// IdentityConfig selects the identity of the cloud's reads.
type IdentityConfig struct {
	// Impersonate makes every read impersonate ServiceAccount (in Namespace), whose RBAC
	// bindings decide what the cloud may read. Off, reads run as the collector itself.
	Impersonate bool `mapstructure:"impersonate"`
	// ServiceAccount is the ServiceAccount to impersonate.
	ServiceAccount string `mapstructure:"service_account"`
	// Namespace is the ServiceAccount's namespace; empty means the collector's own (the
	// POD_NAMESPACE environment variable, else the in-cluster namespace file).
	Namespace string `mapstructure:"namespace"`

	// prevent unkeyed literal initialization
	_ struct{}
}

// LimitsConfig is the one concurrency limit shared by every tool, and the memory bounds.
type LimitsConfig struct {
	// MaxConcurrent requests run at once.
	MaxConcurrent int `mapstructure:"max_concurrent"`
	// MaxWaiting more requests wait for a slot, each for at most Wait; the rest, and those
	// still waiting after Wait, are answered "busy".
	MaxWaiting int           `mapstructure:"max_waiting"`
	Wait       time.Duration `mapstructure:"wait"`
	// MaxReadBytes bounds one response read from the apiserver (a kubectl command decodes
	// whole responses; the kubernetes_api tool stops at its own output limit first).
	MaxReadBytes int64 `mapstructure:"max_read_bytes"`

	// prevent unkeyed literal initialization
	_ struct{}
}

// KubernetesAPIConfig configures the KubernetesAPIRequest tool.
type KubernetesAPIConfig struct {
	Enabled        bool          `mapstructure:"enabled"`
	DefaultTimeout time.Duration `mapstructure:"default_timeout"`
	MaxTimeout     time.Duration `mapstructure:"max_timeout"`
	// MaxResultBytes caps one path's response_data, MaxResponseBytes all of one request's.
	MaxResultBytes   int `mapstructure:"max_result_bytes"`
	MaxResponseBytes int `mapstructure:"max_response_bytes"`

	// prevent unkeyed literal initialization
	_ struct{}
}

// ShellConfig configures the ShellCommandRequest tool.
type ShellConfig struct {
	Enabled bool `mapstructure:"enabled"`
	// Allow lists the commands that may run, as "program verb" (default: all of them, see
	// the README); it can only narrow the built-in list.
	Allow          []string      `mapstructure:"allow"`
	DefaultTimeout time.Duration `mapstructure:"default_timeout"`
	MaxTimeout     time.Duration `mapstructure:"max_timeout"`
	// MaxCommandBytes bounds one command string.
	MaxCommandBytes int `mapstructure:"max_command_bytes"`
	// MaxOutputBytes caps stdout and stderr of all commands of one request together.
	MaxOutputBytes int `mapstructure:"max_output_bytes"`
	// HubbleRelay is the Hubble Relay `hubble observe` asks; absent, hubble observe answers
	// that no Relay is configured. Its defaults are the hubble receiver's.
	HubbleRelay configoptional.Optional[configgrpc.ClientConfig] `mapstructure:"hubble_relay"`

	// prevent unkeyed literal initialization
	_ struct{}
}

// maxMessageBytes is the kestrel_command connection's default message limit; responses
// are also checked against the connection's real limit at start.
const maxMessageBytes = 10 << 20

var _ confmap.Validator = (*Config)(nil)

// Validate checks the configuration.
func (cfg *Config) Validate() error {
	var errs []error
	if cfg.Connection.Type().String() == "" {
		errs = append(errs, errors.New("connection must name the kestrel_command extension"))
	}
	if err := cfg.Kubernetes.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("kubernetes::%w", err))
	}
	if id := cfg.Identity; id.Impersonate {
		for _, msg := range validation.IsDNS1123Subdomain(id.ServiceAccount) {
			errs = append(errs, fmt.Errorf("identity::service_account %q: %s", id.ServiceAccount, msg))
		}
		if id.Namespace != "" {
			for _, msg := range validation.IsDNS1123Label(id.Namespace) {
				errs = append(errs, fmt.Errorf("identity::namespace %q: %s", id.Namespace, msg))
			}
		}
	}
	l := cfg.Limits
	if l.MaxConcurrent < 1 {
		errs = append(errs, fmt.Errorf("limits::max_concurrent must be at least 1, got %d", l.MaxConcurrent))
	}
	if l.MaxWaiting < 0 {
		errs = append(errs, fmt.Errorf("limits::max_waiting must not be negative, got %d", l.MaxWaiting))
	}
	if l.Wait < 0 {
		errs = append(errs, fmt.Errorf("limits::wait must not be negative, got %v", l.Wait))
	}
	if l.MaxReadBytes < 1<<20 {
		errs = append(errs, fmt.Errorf("limits::max_read_bytes must be at least 1 MiB, got %d", l.MaxReadBytes))
	}
	a := cfg.KubernetesAPI
	errs = append(errs, timeouts("kubernetes_api", a.DefaultTimeout, a.MaxTimeout)...)
	errs = append(errs, sizes("kubernetes_api", "max_result_bytes", a.MaxResultBytes, "max_response_bytes", a.MaxResponseBytes)...)
	s := cfg.Shell
	errs = append(errs, timeouts("shell", s.DefaultTimeout, s.MaxTimeout)...)
	errs = append(errs, sizes("shell", "max_output_bytes", s.MaxOutputBytes, "max_output_bytes", s.MaxOutputBytes)...)
	if s.MaxCommandBytes < 64 || s.MaxCommandBytes > 1<<20 {
		errs = append(errs, fmt.Errorf("shell::max_command_bytes must be between 64 and 1048576, got %d", s.MaxCommandBytes))
	}
	known := shell.Verbs()
	for _, a := range s.Allow {
		if !slices.Contains(known, a) {
			errs = append(errs, fmt.Errorf("shell::allow: %q is not a command this collector implements (%s)", a, strings.Join(known, ", ")))
		}
	}
	if r := s.HubbleRelay.Get(); r != nil && r.Endpoint == "" {
		errs = append(errs, errors.New("shell::hubble_relay::endpoint must be set"))
	}
	errs = append(errs, cfg.Changes.validate()...)
	errs = append(errs, cfg.Integrations.validate()...)
	switch r := cfg.Restart; r.Mode {
	case "", RestartExit:
	case RestartRollout:
		for _, msg := range validation.IsDNS1123Subdomain(r.Deployment) {
			errs = append(errs, fmt.Errorf("restart::deployment %q: %s", r.Deployment, msg))
		}
	default:
		errs = append(errs, fmt.Errorf("restart::mode must be empty (disabled), %q or %q, got %q", RestartRollout, RestartExit, r.Mode))
	}
	if cfg.Restart.MaxDelay < 0 || cfg.Restart.MaxDelay > time.Hour {
		errs = append(errs, fmt.Errorf("restart::max_delay must be between 0 and 1h, got %v", cfg.Restart.MaxDelay))
	}
	return errors.Join(errs...)
}

// Restart modes.
const (
	RestartRollout = "rollout"
	RestartExit    = "exit"
)

func (c *ChangesConfig) validate() []error {
	var errs []error
	for _, msg := range validation.IsDNS1123Subdomain(c.ServiceAccount) {
		errs = append(errs, fmt.Errorf("changes::service_account %q: %s", c.ServiceAccount, msg))
	}
	if c.Namespace != "" {
		for _, msg := range validation.IsDNS1123Label(c.Namespace) {
			errs = append(errs, fmt.Errorf("changes::namespace %q: %s", c.Namespace, msg))
		}
	}
	if c.MaxManifestBytes < 1<<10 || c.MaxManifestBytes > 8<<20 {
		errs = append(errs, fmt.Errorf("changes::max_manifest_bytes must be between 1024 and 8388608, got %d", c.MaxManifestBytes))
	}
	errs = append(errs, timeouts("changes::dry_run", c.DryRun.DefaultTimeout, c.DryRun.MaxTimeout)...)
	if c.DryRun.MaxTimeout > 5*time.Minute {
		errs = append(errs, fmt.Errorf("changes::dry_run::max_timeout must not exceed 5m, got %v", c.DryRun.MaxTimeout))
	}
	a := c.Apply
	if a.Expiry < time.Second || a.Expiry > 7*24*time.Hour {
		errs = append(errs, fmt.Errorf("changes::apply::expiry must be between 1s and 168h, got %v", a.Expiry))
	}
	if a.Timeout <= 0 || a.Timeout > 5*time.Minute {
		errs = append(errs, fmt.Errorf("changes::apply::timeout must be between 0 and 5m, got %v", a.Timeout))
	}
	for i, r := range a.AutoApprove {
		if len(r.Kinds) == 0 && len(r.Operations) == 0 {
			errs = append(errs, fmt.Errorf("changes::apply::auto_approve[%d] must list kinds or operations", i))
		}
		for _, op := range r.Operations {
			if t, ok := cloudv1.DatadogQueryType_value[op]; !ok || !integrations.Ops[cloudv1.DatadogQueryType(t)].Write {
				errs = append(errs, fmt.Errorf("changes::apply::auto_approve[%d]::operations: %q is not an integration write (a query_type name such as FLUX_RECONCILE)", i, op))
			}
		}
		for _, k := range r.Kinds {
			if k == "" || strings.ContainsAny(k, " *") {
				errs = append(errs, fmt.Errorf("changes::apply::auto_approve[%d]::kinds: %q is not a kind (Kind or group/Kind, no wildcards)", i, k))
			}
		}
		for _, ns := range r.Namespaces {
			for _, msg := range validation.IsDNS1123Label(ns) {
				errs = append(errs, fmt.Errorf("changes::apply::auto_approve[%d]::namespaces %q: %s", i, ns, msg))
			}
		}
	}
	return errs
}

func (c *IntegrationsConfig) validate() []error {
	errs := timeouts("integrations", c.DefaultTimeout, c.MaxTimeout)
	errs = append(errs, sizes("integrations", "max_response_bytes", c.MaxResponseBytes, "max_response_bytes", c.MaxResponseBytes)...)
	if c.MaxRequestBytes < 1<<10 || c.MaxRequestBytes > 4<<20 {
		errs = append(errs, fmt.Errorf("integrations::max_request_bytes must be between 1024 and 4194304, got %d", c.MaxRequestBytes))
	}
	if c.Datadog.Enabled {
		errs = append(errs, c.Datadog.validate()...)
	}
	if ns := c.ArgoCD.Namespace; ns != "" {
		for _, msg := range validation.IsDNS1123Label(ns) {
			errs = append(errs, fmt.Errorf("integrations::argocd::namespace %q: %s", ns, msg))
		}
	}
	return errs
}

func (c *DatadogConfig) validate() []error {
	var errs []error
	for _, msg := range validation.IsDNS1123Subdomain(c.Secret.Name) {
		errs = append(errs, fmt.Errorf("integrations::datadog::secret::name %q: %s", c.Secret.Name, msg))
	}
	if ns := c.Secret.Namespace; ns != "" {
		for _, msg := range validation.IsDNS1123Label(ns) {
			errs = append(errs, fmt.Errorf("integrations::datadog::secret::namespace %q: %s", ns, msg))
		}
	}
	for k, v := range map[string]string{"api_key": c.Secret.APIKey, "app_key": c.Secret.AppKey} {
		for _, msg := range validation.IsConfigMapKey(v) {
			errs = append(errs, fmt.Errorf("integrations::datadog::secret::%s %q: %s", k, v, msg))
		}
	}
	if c.Endpoint == "" {
		for _, msg := range validation.IsDNS1123Subdomain(c.Site) {
			errs = append(errs, fmt.Errorf("integrations::datadog::site %q: %s", c.Site, msg))
		}
	} else {
		u, err := url.Parse(c.Endpoint)
		switch {
		case err != nil || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil:
			errs = append(errs, fmt.Errorf("integrations::datadog::endpoint %q must be a URL with scheme and host only", c.Endpoint))
		case u.Scheme == "http" && !isLoopback(u.Hostname()):
			errs = append(errs, fmt.Errorf("integrations::datadog::endpoint %q: plain http only to a loopback address (the keys travel in its headers)", c.Endpoint))
		case u.Scheme != "http" && u.Scheme != "https":
			errs = append(errs, fmt.Errorf("integrations::datadog::endpoint %q must use https", c.Endpoint))
		}
	}
	if c.MonitorPollInterval < 0 || (c.MonitorPollInterval > 0 && c.MonitorPollInterval < time.Second) {
		errs = append(errs, fmt.Errorf("integrations::datadog::monitor_poll_interval must be 0 (off) or at least 1s, got %v", c.MonitorPollInterval))
	}
	return errs
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func timeouts(section string, def, maxT time.Duration) []error {
	var errs []error
	if def <= 0 {
		errs = append(errs, fmt.Errorf("%s::default_timeout must be positive, got %v", section, def))
	}
	if maxT < def {
		errs = append(errs, fmt.Errorf("%s::max_timeout (%v) must not be less than %s::default_timeout (%v)", section, maxT, section, def))
	}
	return errs
}

// sizes checks output caps: at least 4 KiB, and below the connection's message limit so a
// response always fits with its envelope.
func sizes(section, k1 string, v1 int, k2 string, v2 int) []error {
	var errs []error
	limit := maxMessageBytes - envelopeHeadroom
	for _, kv := range []struct {
		k string
		v int
	}{{k1, v1}, {k2, v2}} {
		if kv.v < 4<<10 || kv.v > limit {
			errs = append(errs, fmt.Errorf("%s::%s must be between 4096 and %d (the connection's 10 MiB message limit minus the envelope), got %d", section, kv.k, limit, kv.v))
		}
	}
	if k1 != k2 && v1 > v2 {
		errs = append(errs, fmt.Errorf("%s::%s (%d) must not exceed %s::%s (%d)", section, k1, v1, section, k2, v2))
	}
	return slices.CompactFunc(errs, func(a, b error) bool { return a.Error() == b.Error() })
}
