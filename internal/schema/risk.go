package schema

import (
	"time"

	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"google.golang.org/protobuf/types/known/timestamppb"

	cloudv1 "github.com/kestrelai/otelcol-kestrel/api/cloud/v1"
)

// Risk assessment event names (the k8s_risk receiver). A finding is the state of one check on
// one object, or one attack chain; an assessment record closes a full assessment.
const (
	// EventRiskFinding is one finding, emitted when it appears, changes or is resolved, and by
	// every full assessment while it holds. Body: a message for people (string). Becomes a
	// cloud.v1.RiskFinding.
	EventRiskFinding = "kestrelai.risk.finding"
	// EventRiskAssessment closes a full assessment: every finding that holds was emitted with
	// its AttrRiskAssessmentID before it. Becomes a cloud.v1.RiskAssessment.
	EventRiskAssessment = "kestrelai.risk.assessment"
)

// Rule identity (semantic conventions, security_rule.*). Record attributes.
const (
	// AttrSecurityRuleUUID (string): the check id, <pillar>.<slug>, e.g.
	// security.privileged-container; attack chains are security.chain-<slug>.
	AttrSecurityRuleUUID = string(semconv.SecurityRuleUUIDKey)
	// AttrSecurityRuleName (string): the check's title.
	AttrSecurityRuleName = string(semconv.SecurityRuleNameKey)
	// AttrSecurityRuleCategory (string): the pillar (RiskPillars).
	AttrSecurityRuleCategory = string(semconv.SecurityRuleCategoryKey)
	// AttrSecurityRuleRulesetName (string): always RiskRuleset.
	AttrSecurityRuleRulesetName = string(semconv.SecurityRuleRulesetNameKey)
)

// RiskRuleset names the catalogue of checks in AttrSecurityRuleRulesetName.
const RiskRuleset = "kestrelai-risk"

// Finding attributes of our own. Record attributes. The object is named by
// AttrK8sObjectKind, AttrK8sObjectName, AttrK8sObjectUID, AttrK8sObjectAPIVersion and
// AttrK8sNamespaceName (empty for cluster-scoped objects).
const (
	// AttrRiskFingerprint (string): stable id of the finding, from the check id and the
	// object's UID (a chain's: its anchor's). Consumers deduplicate by it.
	AttrRiskFingerprint = "kestrelai.risk.fingerprint"
	// AttrRiskSeverity (string): RiskSeverities.
	AttrRiskSeverity = "kestrelai.risk.severity"
	// AttrRiskResult (string): pass, fail, warn, skip or error, as in PolicyReports. pass
	// appears only on resolved findings.
	AttrRiskResult = "kestrelai.risk.result"
	// AttrRiskStatus (string): new (first emitted by this process), changed (result,
	// severity, evidence or steps changed), open (still holds; a full assessment re-affirms
	// it) or resolved (emitted once when it no longer holds).
	AttrRiskStatus = "kestrelai.risk.status"
	// AttrRiskResolution (string, resolved findings only): fixed (the check passes now),
	// deleted (the object is gone) or excluded (its namespace is no longer assessed).
	AttrRiskResolution = "kestrelai.risk.resolution"
	// AttrRiskRemediation (string): what to change.
	AttrRiskRemediation = "kestrelai.risk.remediation"
	// AttrRiskEvidence (maps with keys path and value, strings): the offending field paths
	// (e.g. spec.template.spec.containers[app].securityContext.privileged) and values.
	AttrRiskEvidence = "kestrelai.risk.evidence"
	// AttrRiskChainSteps (maps with keys link (string), kind, namespace, name, uid (strings,
	// the object of the step) and evidence (maps as in AttrRiskEvidence)): the links of an
	// attack chain, in order.
	AttrRiskChainSteps = "kestrelai.risk.chain.steps"
	// Equivalent check ids in other tools (string slices): Polaris, kube-score, Kubescape
	// controls and CIS Kubernetes Benchmark sections.
	AttrRiskEquivalentPolaris   = "kestrelai.risk.equivalent.polaris"
	AttrRiskEquivalentKubeScore = "kestrelai.risk.equivalent.kube_score"
	AttrRiskEquivalentKubescape = "kestrelai.risk.equivalent.kubescape"
	AttrRiskEquivalentCIS       = "kestrelai.risk.equivalent.cis"
	// AttrRiskExemptionReason (string): why the finding is exempt (result skip), from the
	// annotation on the object or its namespace; AttrRiskExemptionUntil (RFC 3339): when the
	// exemption ends, if it does.
	AttrRiskExemptionReason = "kestrelai.risk.exemption.reason"
	AttrRiskExemptionUntil  = "kestrelai.risk.exemption.until"
	// AttrRiskFirstSeen (RFC 3339): when this process first found it.
	AttrRiskFirstSeen = "kestrelai.risk.first_seen"
	// AttrRiskAssessmentID (string): the full assessment that emitted the record; absent on
	// findings emitted for a change between assessments.
	AttrRiskAssessmentID = "kestrelai.risk.assessment.id"
	// AttrWorkloadName (string): with AttrWorkloadKind, the workload that owns the object
	// (the object itself for workloads).
	AttrWorkloadName = "kestrelai.k8s.workload.name"

	// Assessment records: AttrRiskAssessmentID, AttrRiskAssessmentStarted (RFC 3339; the
	// record's Timestamp is its end), AttrRiskAssessmentObjects (int: objects evaluated) and
	// AttrRiskAssessmentCounts (maps with keys pillar, severity, result (strings) and count
	// (int)): the findings that hold, and the passing checks, by pillar, severity and result.
	AttrRiskAssessmentStarted = "kestrelai.risk.assessment.started"
	AttrRiskAssessmentObjects = "kestrelai.risk.assessment.objects"
	AttrRiskAssessmentCounts  = "kestrelai.risk.assessment.counts"
)

// Values of AttrRiskResult, AttrRiskStatus and AttrRiskResolution.
const (
	RiskResultPass  = "pass"
	RiskResultFail  = "fail"
	RiskResultWarn  = "warn"
	RiskResultSkip  = "skip"
	RiskResultError = "error"

	RiskStatusNew      = "new"
	RiskStatusChanged  = "changed"
	RiskStatusOpen     = "open"
	RiskStatusResolved = "resolved"

	RiskResolutionFixed    = "fixed"
	RiskResolutionDeleted  = "deleted"
	RiskResolutionExcluded = "excluded"
)

// RiskSeverities are the values of AttrRiskSeverity, most severe first.
var RiskSeverities = []string{"critical", "high", "medium", "low", "info"}

// RiskPillars are the values of AttrSecurityRuleCategory: the six pillars of the
// Well-Architected Framework.
var RiskPillars = []string{
	"security", "reliability", "performance-efficiency", "cost-optimization", "operational-excellence", "sustainability",
}

// RiskObject names the object of a finding or of a chain step.
type RiskObject struct {
	APIVersion, Kind, Namespace, Name, UID string
}

// RiskEvidence is one offending field and its value.
type RiskEvidence struct {
	Path, Value string
}

// RiskChainStep is one link of an attack chain.
type RiskChainStep struct {
	Link     string
	Object   RiskObject
	Evidence []RiskEvidence
}

// RiskFinding is what a EventRiskFinding record says; its message is the record's body.
type RiskFinding struct {
	Fingerprint, CheckID, Title, Pillar, Severity, Result, Status, Resolution string
	Object                                                                    RiskObject
	WorkloadKind, WorkloadName                                                string
	Remediation                                                               string
	Evidence                                                                  []RiskEvidence
	Steps                                                                     []RiskChainStep
	Polaris, KubeScore, Kubescape, CIS                                        []string
	ExemptionReason                                                           string
	ExemptionUntil, FirstSeen                                                 time.Time
	AssessmentID                                                              string
}

// The keys of the maps in AttrRiskEvidence, AttrRiskChainSteps and AttrRiskAssessmentCounts.
const (
	riskPath     = "path"
	riskValue    = "value"
	riskLink     = "link"
	riskKind     = "kind"
	riskNS       = "namespace"
	riskName     = "name"
	riskUID      = "uid"
	riskEvidence = "evidence"
	riskPillar   = "pillar"
	riskSeverity = "severity"
	riskResult   = "result"
	riskCount    = "count"
)

// RiskEvidenceFields are the keys of each map in AttrRiskEvidence (and in a step's evidence).
var RiskEvidenceFields = Table[RiskEvidence, cloudv1.RiskEvidence]{
	Str(riskPath, Required, func(e *RiskEvidence) string { return e.Path }, func(m *cloudv1.RiskEvidence, v string) { m.Path = v }),
	Str(riskValue, Optional, func(e *RiskEvidence) string { return e.Value }, func(m *cloudv1.RiskEvidence, v string) { m.Value = v }),
}

// RiskChainStepFields are the keys of each map in AttrRiskChainSteps.
var RiskChainStepFields = Table[RiskChainStep, cloudv1.RiskChainStep]{
	Str(riskLink, Required, func(s *RiskChainStep) string { return s.Link }, func(m *cloudv1.RiskChainStep, v string) { m.Link = v }),
	Str(riskKind, Optional, func(s *RiskChainStep) string { return s.Object.Kind }, func(m *cloudv1.RiskChainStep, v string) { stepObject(m).Kind = v }),
	Str(riskNS, Optional, func(s *RiskChainStep) string { return s.Object.Namespace }, func(m *cloudv1.RiskChainStep, v string) { stepObject(m).Namespace = v }),
	Str(riskName, Optional, func(s *RiskChainStep) string { return s.Object.Name }, func(m *cloudv1.RiskChainStep, v string) { stepObject(m).Name = v }),
	Str(riskUID, Optional, func(s *RiskChainStep) string { return s.Object.UID }, func(m *cloudv1.RiskChainStep, v string) { stepObject(m).Uid = v }),
	Maps(riskEvidence, RiskEvidenceFields, func(s *RiskChainStep) []RiskEvidence { return s.Evidence }, func(m *cloudv1.RiskChainStep, v []*cloudv1.RiskEvidence) { m.Evidence = v }),
}

func stepObject(m *cloudv1.RiskChainStep) *cloudv1.ObjectReference {
	if m.Object == nil {
		m.Object = &cloudv1.ObjectReference{}
	}
	return m.Object
}

func findingObject(m *cloudv1.RiskFinding) *cloudv1.ObjectReference {
	if m.Object == nil {
		m.Object = &cloudv1.ObjectReference{}
	}
	return m.Object
}

// RiskFindingFields are the attributes of EventRiskFinding records.
var RiskFindingFields = Table[RiskFinding, cloudv1.RiskFinding]{
	Str(AttrRiskFingerprint, Required, func(f *RiskFinding) string { return f.Fingerprint }, func(m *cloudv1.RiskFinding, v string) { m.Fingerprint = v }),
	Str(AttrSecurityRuleUUID, Required, func(f *RiskFinding) string { return f.CheckID }, func(m *cloudv1.RiskFinding, v string) { m.CheckId = v }),
	Str(AttrSecurityRuleName, Optional, func(f *RiskFinding) string { return f.Title }, func(m *cloudv1.RiskFinding, v string) { m.Title = v }),
	Str(AttrSecurityRuleCategory, Required, func(f *RiskFinding) string { return f.Pillar }, func(m *cloudv1.RiskFinding, v string) { m.Pillar = v }),
	Str[RiskFinding, cloudv1.RiskFinding](AttrSecurityRuleRulesetName, Optional, func(*RiskFinding) string { return RiskRuleset }, nil),
	Str(AttrRiskSeverity, Required, func(f *RiskFinding) string { return f.Severity }, func(m *cloudv1.RiskFinding, v string) { m.Severity = v }),
	Str(AttrRiskResult, Required, func(f *RiskFinding) string { return f.Result }, func(m *cloudv1.RiskFinding, v string) { m.Result = v }),
	Str(AttrRiskStatus, Required, func(f *RiskFinding) string { return f.Status }, func(m *cloudv1.RiskFinding, v string) { m.Status = v }),
	Str(AttrRiskResolution, Optional, func(f *RiskFinding) string { return f.Resolution }, func(m *cloudv1.RiskFinding, v string) { m.Resolution = v }),
	Str(AttrK8sObjectAPIVersion, Optional, func(f *RiskFinding) string { return f.Object.APIVersion }, func(m *cloudv1.RiskFinding, v string) { findingObject(m).ApiVersion = v }),
	Str(AttrK8sObjectKind, Required, func(f *RiskFinding) string { return f.Object.Kind }, func(m *cloudv1.RiskFinding, v string) { findingObject(m).Kind = v }),
	Str(AttrK8sNamespaceName, Optional, func(f *RiskFinding) string { return f.Object.Namespace }, func(m *cloudv1.RiskFinding, v string) { findingObject(m).Namespace = v }),
	Str(AttrK8sObjectName, Optional, func(f *RiskFinding) string { return f.Object.Name }, func(m *cloudv1.RiskFinding, v string) { findingObject(m).Name = v }),
	Str(AttrK8sObjectUID, Optional, func(f *RiskFinding) string { return f.Object.UID }, func(m *cloudv1.RiskFinding, v string) { findingObject(m).Uid = v }),
	Str(AttrWorkloadKind, Optional, func(f *RiskFinding) string { return f.WorkloadKind }, func(m *cloudv1.RiskFinding, v string) { m.WorkloadKind = v }),
	Str(AttrWorkloadName, Optional, func(f *RiskFinding) string { return f.WorkloadName }, func(m *cloudv1.RiskFinding, v string) { m.WorkloadName = v }),
	Str(AttrRiskRemediation, Optional, func(f *RiskFinding) string { return f.Remediation }, func(m *cloudv1.RiskFinding, v string) { m.Remediation = v }),
	Maps(AttrRiskEvidence, RiskEvidenceFields, func(f *RiskFinding) []RiskEvidence { return f.Evidence }, func(m *cloudv1.RiskFinding, v []*cloudv1.RiskEvidence) { m.Evidence = v }),
	Maps(AttrRiskChainSteps, RiskChainStepFields, func(f *RiskFinding) []RiskChainStep { return f.Steps }, func(m *cloudv1.RiskFinding, v []*cloudv1.RiskChainStep) { m.ChainSteps = v }),
	Strs(AttrRiskEquivalentPolaris, func(f *RiskFinding) []string { return f.Polaris }, func(m *cloudv1.RiskFinding, v []string) { m.PolarisIds = v }),
	Strs(AttrRiskEquivalentKubeScore, func(f *RiskFinding) []string { return f.KubeScore }, func(m *cloudv1.RiskFinding, v []string) { m.KubeScoreIds = v }),
	Strs(AttrRiskEquivalentKubescape, func(f *RiskFinding) []string { return f.Kubescape }, func(m *cloudv1.RiskFinding, v []string) { m.KubescapeIds = v }),
	Strs(AttrRiskEquivalentCIS, func(f *RiskFinding) []string { return f.CIS }, func(m *cloudv1.RiskFinding, v []string) { m.CisIds = v }),
	Str(AttrRiskExemptionReason, Optional, func(f *RiskFinding) string { return f.ExemptionReason }, func(m *cloudv1.RiskFinding, v string) { m.ExemptionReason = v }),
	Time(AttrRiskExemptionUntil, func(f *RiskFinding) time.Time { return f.ExemptionUntil }, func(m *cloudv1.RiskFinding, v *timestamppb.Timestamp) { m.ExemptionUntil = v }),
	Time(AttrRiskFirstSeen, func(f *RiskFinding) time.Time { return f.FirstSeen }, func(m *cloudv1.RiskFinding, v *timestamppb.Timestamp) { m.FirstSeen = v }),
	Str(AttrRiskAssessmentID, Optional, func(f *RiskFinding) string { return f.AssessmentID }, func(m *cloudv1.RiskFinding, v string) { m.AssessmentId = v }),
}

// RiskCount is one row of an assessment's counts.
type RiskCount struct {
	Pillar, Severity, Result string
	Count                    int32
}

// RiskAssessment is what a EventRiskAssessment record says; its end is the record's
// Timestamp.
type RiskAssessment struct {
	ID      string
	Started time.Time
	Objects int32
	Counts  []RiskCount
}

// RiskCountFields are the keys of each map in AttrRiskAssessmentCounts.
var RiskCountFields = Table[RiskCount, cloudv1.RiskCount]{
	Str(riskPillar, Required, func(c *RiskCount) string { return c.Pillar }, func(m *cloudv1.RiskCount, v string) { m.Pillar = v }),
	Str(riskSeverity, Required, func(c *RiskCount) string { return c.Severity }, func(m *cloudv1.RiskCount, v string) { m.Severity = v }),
	Str(riskResult, Required, func(c *RiskCount) string { return c.Result }, func(m *cloudv1.RiskCount, v string) { m.Result = v }),
	Int32(riskCount, func(c *RiskCount) int32 { return c.Count }, func(m *cloudv1.RiskCount, v int32) { m.Count = v }),
}

// RiskAssessmentFields are the attributes of EventRiskAssessment records.
var RiskAssessmentFields = Table[RiskAssessment, cloudv1.RiskAssessment]{
	Str(AttrRiskAssessmentID, Required, func(a *RiskAssessment) string { return a.ID }, func(m *cloudv1.RiskAssessment, v string) { m.AssessmentId = v }),
	Time(AttrRiskAssessmentStarted, func(a *RiskAssessment) time.Time { return a.Started }, func(m *cloudv1.RiskAssessment, v *timestamppb.Timestamp) { m.StartedAt = v }),
	Int32(AttrRiskAssessmentObjects, func(a *RiskAssessment) int32 { return a.Objects }, func(m *cloudv1.RiskAssessment, v int32) { m.Objects = v }),
	Maps(AttrRiskAssessmentCounts, RiskCountFields, func(a *RiskAssessment) []RiskCount { return a.Counts }, func(m *cloudv1.RiskAssessment, v []*cloudv1.RiskCount) { m.Counts = v }),
}
