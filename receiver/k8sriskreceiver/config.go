package k8sriskreceiver // import "github.com/kestrelai/otelcol-kestrel/receiver/k8sriskreceiver"

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"go.opentelemetry.io/collector/confmap"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/kestrelai/otelcol-kestrel/internal/flowgraph"
	"github.com/kestrelai/otelcol-kestrel/internal/k8sapi"
	"github.com/kestrelai/otelcol-kestrel/receiver/k8sriskreceiver/internal/checks"
)

// Config is the k8s_risk receiver's configuration.
type Config struct {
	// Config says how to reach the apiserver: auth_type and context.
	k8sapi.Config `mapstructure:",squash"`

	// Namespaces selects the namespaces whose objects are assessed.
	Namespaces NamespacesConfig `mapstructure:"namespaces"`

	// Interval is the time between full assessments; the first starts when the informers
	// have their initial state.
	Interval time.Duration `mapstructure:"interval"`
	// Debounce is how long an object must stay unchanged before it is evaluated again, so
	// that a rollout evaluates each object once.
	Debounce time.Duration `mapstructure:"debounce"`
	// MaxObjectsPerSecond paces full assessments, so that they never take more than a
	// slice of a core and never delay the inventory.
	MaxObjectsPerSecond int `mapstructure:"max_objects_per_second"`

	// Checks selects the checks that run.
	Checks ChecksConfig `mapstructure:"checks"`
	// AttackChains configures the chains that read observed traffic.
	AttackChains AttackChainsConfig `mapstructure:"attack_chains"`
	// PolicyReports configures writing wgpolicyk8s.io/v1alpha2 PolicyReports.
	PolicyReports PolicyReportsConfig `mapstructure:"policy_reports"`

	// prevent unkeyed literal initialization
	_ struct{}
}

// NamespacesConfig selects namespaces: those in Include (all when empty) that are not in
// Exclude.
type NamespacesConfig struct {
	// Include lists the only namespaces to assess. Each is then watched separately, so
	// Roles in them are enough for the namespaced kinds.
	Include []string `mapstructure:"include"`
	// Exclude lists namespaces to leave out.
	Exclude []string `mapstructure:"exclude"`

	// prevent unkeyed literal initialization
	_ struct{}
}

// ChecksConfig selects checks.
type ChecksConfig struct {
	// Exclude lists checks that do not run: ids, <pillar>.* or *.
	Exclude []string `mapstructure:"exclude"`

	// prevent unkeyed literal initialization
	_ struct{}
}

// AttackChainsConfig configures the attack chains that read the traffic the hubble receiver
// observed.
type AttackChainsConfig struct {
	// FlowWindow is how far back observed traffic counts.
	FlowWindow time.Duration `mapstructure:"flow_window"`
	// Interval is how often chains are computed again as traffic comes in (changes to
	// objects recompute them after debounce).
	Interval time.Duration `mapstructure:"interval"`

	// prevent unkeyed literal initialization
	_ struct{}
}

// PolicyReportsConfig configures PolicyReports: one per assessed namespace and one
// ClusterPolicyReport, named kestrel-risk, kept current by server-side apply.
type PolicyReportsConfig struct {
	// Enabled turns writing reports on (it needs the wgpolicyk8s.io CRDs and RBAC to
	// create and patch them).
	Enabled bool `mapstructure:"enabled"`
	// MaxResults bounds the results of one report (reports live in etcd); the most severe
	// are kept, the summary counts all.
	MaxResults int `mapstructure:"max_results"`
	// Interval is the least time between two writes of one report.
	Interval time.Duration `mapstructure:"interval"`

	// prevent unkeyed literal initialization
	_ struct{}
}

var _ confmap.Validator = (*Config)(nil)

// Validate checks the configuration.
func (cfg *Config) Validate() error {
	var errs []error
	ns := cfg.Namespaces
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
	for _, n := range ns.Include {
		if slices.Contains(ns.Exclude, n) {
			errs = append(errs, fmt.Errorf("namespaces: %q is both included and excluded", n))
		}
	}
	if cfg.Interval < time.Minute {
		errs = append(errs, fmt.Errorf("interval must be at least 1m, got %v", cfg.Interval))
	}
	if cfg.Debounce < 0 || cfg.Debounce > cfg.Interval {
		errs = append(errs, fmt.Errorf("debounce must be between 0 and interval (%v), got %v", cfg.Interval, cfg.Debounce))
	}
	if cfg.MaxObjectsPerSecond <= 0 {
		errs = append(errs, fmt.Errorf("max_objects_per_second must be positive, got %d", cfg.MaxObjectsPerSecond))
	}
	for _, p := range cfg.Checks.Exclude {
		if !checks.ValidPattern(p) {
			errs = append(errs, fmt.Errorf("checks::exclude: %q names no check (ids look like security.privileged-container; security.* and * work too)", p))
		}
	}
	if w := cfg.AttackChains.FlowWindow; w <= 0 || w > flowgraph.Retention {
		errs = append(errs, fmt.Errorf("attack_chains::flow_window must be positive and at most %v (how long observed traffic is kept), got %v", flowgraph.Retention, w))
	}
	if cfg.AttackChains.Interval < time.Second {
		errs = append(errs, fmt.Errorf("attack_chains::interval must be at least 1s, got %v", cfg.AttackChains.Interval))
	}
	if pr := cfg.PolicyReports; pr.MaxResults <= 0 || pr.MaxResults > maxReportResults {
		errs = append(errs, fmt.Errorf("policy_reports::max_results must be between 1 and %d (reports live in etcd), got %d", maxReportResults, pr.MaxResults))
	}
	if cfg.PolicyReports.Interval < 0 {
		errs = append(errs, fmt.Errorf("policy_reports::interval must not be negative, got %v", cfg.PolicyReports.Interval))
	}
	return errors.Join(errs...)
}

// maxReportResults keeps a report well below etcd's request size limit (1.5 MiB): a result
// takes about 1 KiB.
const maxReportResults = 1000

// assessed reports whether objects of namespace ns are assessed.
func (n *NamespacesConfig) assessed(ns string) bool {
	return (len(n.Include) == 0 || slices.Contains(n.Include, ns)) && !slices.Contains(n.Exclude, ns)
}

// enabledChecks returns the catalogue without the excluded checks.
func (cfg *Config) enabledChecks() []*checks.Check {
	var out []*checks.Check
	for _, c := range checks.Catalogue() {
		if !slices.ContainsFunc(cfg.Checks.Exclude, c.Match) {
			out = append(out, c)
		}
	}
	return out
}
