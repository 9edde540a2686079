// Package checks is the risk receiver's catalogue: every check with its pillar, severity,
// remediation, equivalents in other tools and the data it reads, and how it evaluates one
// object (or, for attack chains, the whole cluster). Checks are pure: they read a View and
// return outcomes, and the receiver turns outcomes into findings.
package checks // import "github.com/kestrelai/otelcol-kestrel/receiver/k8sriskreceiver/internal/checks"

import (
	"fmt"
	"slices"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kestrelai/otelcol-kestrel/internal/k8scache"
	"github.com/kestrelai/otelcol-kestrel/internal/schema"
)

// Pillars and severities, as schema names them.
const (
	Security              = "security"
	Reliability           = "reliability"
	PerformanceEfficiency = "performance-efficiency"
	CostOptimization      = "cost-optimization"
	OperationalExcellence = "operational-excellence"
	Sustainability        = "sustainability"

	Critical = "critical"
	High     = "high"
	Medium   = "medium"
	Low      = "low"
	Info     = "info"
)

// Check is one entry of the catalogue.
type Check struct {
	// ID is <pillar>.<slug>.
	ID, Title, Pillar, Severity string
	Remediation                 string
	// Equivalent ids in Polaris, kube-score, Kubescape (controls) and the CIS Kubernetes
	// Benchmark (sections).
	Polaris, KubeScore, Kubescape, CIS []string
	// Kinds are the kinds of the objects it evaluates (Eval), e.g. Deployment.
	Kinds []string
	// Needs are the resources it reads besides its objects' own: when one could not be
	// listed, the check is skipped for the whole cluster.
	Needs []*k8scache.Resource
	// NeedsFlows: it reads observed traffic, which only a running flow source provides.
	NeedsFlows bool
	// Advisory checks report warn instead of fail.
	Advisory bool

	// Eval evaluates one object; Chains evaluates the cluster (attack chains). Exactly one
	// is set.
	Eval   func(v *View, s *Subject) Outcome
	Chains func(v *View) []Chain
}

// Failing is the result a failing outcome of the check has: fail, or warn for advisory
// checks.
func (c *Check) Failing() string {
	if c.Advisory {
		return schema.RiskResultWarn
	}
	return schema.RiskResultFail
}

// Outcome is what a check says about one object.
type Outcome struct {
	// Applies is false when the check has nothing to say about the object (e.g. replica
	// counts of a DaemonSet): no finding, not even a passing one.
	Applies bool
	// Evidence, when not empty, are the offending fields: the check fails.
	Evidence []schema.RiskEvidence
	// Skip, when set, says why the check could not be evaluated.
	Skip string
}

func pass() Outcome              { return Outcome{Applies: true} }
func notApplicable() Outcome     { return Outcome{} }
func skip(reason string) Outcome { return Outcome{Applies: true, Skip: reason} }

// outcomeOf fails with ev, or passes when ev is empty.
func outcomeOf(ev []schema.RiskEvidence) Outcome { return Outcome{Applies: true, Evidence: ev} }

func evidence(path, value string) schema.RiskEvidence {
	return schema.RiskEvidence{Path: path, Value: value}
}

// Chain is one attack chain found: the object it is about (its anchor) and its links.
type Chain struct {
	Anchor schema.RiskObject
	// AnchorMeta is the anchor's metadata, for its exemptions.
	AnchorMeta                 *metav1.ObjectMeta
	WorkloadKind, WorkloadName string
	Steps                      []schema.RiskChainStep
	Message                    string
}

// Catalogue returns every check, in a stable order.
func Catalogue() []*Check { return catalogue }

var catalogue = func() []*Check {
	all := slices.Concat(workloadChecks, objectChecks, rbacChecks, chainChecks)
	seen := map[string]bool{}
	for _, c := range all {
		if seen[c.ID] || !strings.HasPrefix(c.ID, c.Pillar+".") || !slices.Contains(schema.RiskPillars, c.Pillar) ||
			!slices.Contains(schema.RiskSeverities, c.Severity) || (c.Eval == nil) == (c.Chains == nil) || (c.Eval != nil) == (len(c.Kinds) == 0) {
			panic(fmt.Sprintf("checks: malformed catalogue entry %q", c.ID))
		}
		seen[c.ID] = true
	}
	return all
}()

// ByID returns the check with id.
func ByID(id string) (*Check, bool) {
	i := slices.IndexFunc(catalogue, func(c *Check) bool { return c.ID == id })
	if i < 0 {
		return nil, false
	}
	return catalogue[i], true
}

// Match reports whether pattern names the check: its id, <pillar>.* or *.
func (c *Check) Match(pattern string) bool {
	switch {
	case pattern == "*" || pattern == c.ID:
		return true
	case strings.HasSuffix(pattern, ".*"):
		return c.Pillar == strings.TrimSuffix(pattern, ".*")
	}
	return false
}

// ValidPattern reports whether pattern names at least one check.
func ValidPattern(pattern string) bool {
	return slices.ContainsFunc(catalogue, func(c *Check) bool { return c.Match(pattern) })
}

// AppliesTo reports whether the check evaluates objects of kind.
func (c *Check) AppliesTo(kind string) bool { return slices.Contains(c.Kinds, kind) }

// isSystem reports whether an RBAC object is one of Kubernetes' own defaults: a role or
// binding the apiserver bootstraps, or one named system:*.
func isSystem(m *metav1.ObjectMeta) bool {
	return m.Labels["kubernetes.io/bootstrapping"] == "rbac-defaults" || strings.HasPrefix(m.Name, "system:")
}
