package k8sinventoryreceiver // import "github.com/kestrelai/otelcol-kestrel/receiver/k8sinventoryreceiver"

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/confmap"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/tools/leaderelection"

	"github.com/kestrelai/otelcol-kestrel/internal/k8sapi"
)

// Config is the k8s_inventory receiver's configuration.
type Config struct {
	// Config says how to reach the apiserver: auth_type and context.
	k8sapi.Config `mapstructure:",squash"`

	// Namespaces limits the namespaced objects the receiver reports.
	Namespaces NamespacesConfig `mapstructure:"namespaces"`

	// EventTypes are the core/v1 Event types reported as kestrelai.k8s.event records.
	// Empty turns Event collection off.
	EventTypes []string `mapstructure:"event_types"`

	// LeaderElection, when enabled, makes replicas share a coordination.k8s.io Lease so
	// that only the holder collects and emits.
	LeaderElection configoptional.Optional[LeaderElectionConfig] `mapstructure:"leader_election"`

	// prevent unkeyed literal initialization
	_ struct{}
}

// NamespacesConfig selects namespaces. At most one of the two lists may be set.
type NamespacesConfig struct {
	// Include lists the only namespaces to watch. The receiver then watches each of them
	// separately, so namespace-scoped RBAC (Roles) is enough for namespaced kinds.
	Include []string `mapstructure:"include"`
	// Exclude lists namespaces to leave out; everything else is watched cluster-wide.
	Exclude []string `mapstructure:"exclude"`

	// prevent unkeyed literal initialization
	_ struct{}
}

// LeaderElectionConfig configures the Lease used for leader election.
type LeaderElectionConfig struct {
	// LeaseName is the name of the Lease object.
	LeaseName string `mapstructure:"lease_name"`
	// LeaseNamespace is the namespace of the Lease; empty means the pod's namespace
	// ($POD_NAMESPACE, or the service account's namespace file).
	LeaseNamespace string `mapstructure:"lease_namespace"`
	// LeaseDuration is how long a lease is valid without renewal.
	LeaseDuration time.Duration `mapstructure:"lease_duration"`
	// RenewDeadline is how long the holder keeps trying to renew before it gives up.
	RenewDeadline time.Duration `mapstructure:"renew_deadline"`
	// RetryPeriod is the interval between attempts to acquire or renew.
	RetryPeriod time.Duration `mapstructure:"retry_period"`

	// prevent unkeyed literal initialization
	_ struct{}
}

var eventTypes = []string{"Normal", "Warning"}

var _ confmap.Validator = (*Config)(nil)

// Validate checks the configuration.
func (cfg *Config) Validate() error {
	var errs []error
	ns := cfg.Namespaces
	if len(ns.Include) > 0 && len(ns.Exclude) > 0 {
		errs = append(errs, errors.New("namespaces: set include or exclude, not both"))
	}
	for _, list := range []struct {
		key   string
		names []string
	}{{"include", ns.Include}, {"exclude", ns.Exclude}} {
		for i, n := range list.names {
			if msgs := validation.IsDNS1123Label(n); len(msgs) > 0 {
				errs = append(errs, fmt.Errorf("namespaces::%s: %q is not a namespace name: %s", list.key, n, msgs[0]))
			}
			if slices.Contains(list.names[:i], n) {
				errs = append(errs, fmt.Errorf("namespaces::%s: %q is listed twice", list.key, n))
			}
		}
	}
	for _, t := range cfg.EventTypes {
		if !slices.Contains(eventTypes, t) {
			errs = append(errs, fmt.Errorf("event_types: %q is not an Event type (%v)", t, eventTypes))
		}
	}
	if le := cfg.LeaderElection.Get(); le != nil {
		errs = append(errs, le.validate()...)
	}
	return errors.Join(errs...)
}

func (le *LeaderElectionConfig) validate() []error {
	var errs []error
	if msgs := validation.IsDNS1123Subdomain(le.LeaseName); len(msgs) > 0 {
		errs = append(errs, fmt.Errorf("leader_election::lease_name: %q is not a valid name: %s", le.LeaseName, msgs[0]))
	}
	if le.LeaseNamespace != "" {
		if msgs := validation.IsDNS1123Label(le.LeaseNamespace); len(msgs) > 0 {
			errs = append(errs, fmt.Errorf("leader_election::lease_namespace: %q is not a namespace name: %s", le.LeaseNamespace, msgs[0]))
		}
	}
	// The same rules client-go's leader elector enforces, reported at load time.
	if le.RetryPeriod <= 0 {
		errs = append(errs, fmt.Errorf("leader_election::retry_period must be positive, got %v", le.RetryPeriod))
	}
	if le.RenewDeadline <= time.Duration(leaderelection.JitterFactor*float64(le.RetryPeriod)) {
		errs = append(errs, fmt.Errorf("leader_election::renew_deadline (%v) must be greater than %v times retry_period (%v)", le.RenewDeadline, leaderelection.JitterFactor, le.RetryPeriod))
	}
	if le.LeaseDuration <= le.RenewDeadline {
		errs = append(errs, fmt.Errorf("leader_election::lease_duration (%v) must be greater than renew_deadline (%v)", le.LeaseDuration, le.RenewDeadline))
	}
	return errs
}
