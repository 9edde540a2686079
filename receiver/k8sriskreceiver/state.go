package k8sriskreceiver // import "github.com/kestrelai/otelcol-kestrel/receiver/k8sriskreceiver"

import (
	"cmp"
	"context"
	"fmt"
	"hash/fnv"
	"slices"
	"strings"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/kestrelai/otelcol-kestrel/internal/k8scache"
	"github.com/kestrelai/otelcol-kestrel/internal/schema"
	"github.com/kestrelai/otelcol-kestrel/receiver/k8sriskreceiver/internal/checks"
	"github.com/kestrelai/otelcol-kestrel/receiver/k8sriskreceiver/internal/metadata"
	"github.com/kestrelai/otelcol-kestrel/receiver/k8sriskreceiver/internal/report"
)

// finding is one finding that holds: a check that does not pass on an object, or a chain.
type finding struct {
	fp                         string
	check                      *checks.Check
	object                     schema.RiskObject
	workloadKind, workloadName string
	result                     string // fail, warn, skip or error
	message                    string
	evidence                   []schema.RiskEvidence
	steps                      []schema.RiskChainStep
	exemptionReason            string
	exemptionUntil             time.Time
	firstSeen                  time.Time
	sig                        uint64 // of what the finding says; a change is emitted
}

// seal computes the signature of what the finding says.
func (f *finding) seal() {
	h := fnv.New64a()
	w := func(s string) {
		_, _ = h.Write([]byte(s))
		_, _ = h.Write([]byte{0})
	}
	w(f.result)
	w(f.message)
	w(f.exemptionReason)
	w(f.exemptionUntil.String())
	w(f.workloadKind + "/" + f.workloadName)
	for _, e := range f.evidence {
		w(e.Path)
		w(e.Value)
	}
	for _, s := range f.steps {
		w(s.Link)
		w(s.Object.Kind + "/" + s.Object.Namespace + "/" + s.Object.Name)
		for _, e := range s.Evidence {
			w(e.Path)
			w(e.Value)
		}
	}
	f.sig = h.Sum64()
}

// objectFinding builds the finding of check c on subject s from an outcome that is not a
// pass.
func (e *engine) objectFinding(c *checks.Check, s *checks.Subject, out checks.Outcome, now time.Time, objEx, nsEx *checks.Exemption) *finding {
	f := &finding{
		fp: fingerprint(c.ID, s.Object.UID), check: c, object: s.Object,
		workloadKind: s.WorkloadKind, workloadName: s.WorkloadName,
		evidence: out.Evidence, firstSeen: now,
	}
	switch {
	case out.Skip != "" && len(out.Evidence) > 0: // the check panicked
		f.result = schema.RiskResultError
		f.message = fmt.Sprintf("%s: %s: %s", s, c.Title, firstLine(out.Skip))
	case out.Skip != "":
		f.result = schema.RiskResultSkip
		f.message = fmt.Sprintf("%s: %s: not evaluated: %s", s, c.Title, out.Skip)
	default:
		f.result = c.Failing()
		f.message = fmt.Sprintf("%s: %s: %s", s, c.Title, summarize(out.Evidence))
		e.exempt(f, now, objEx, nsEx)
	}
	f.seal()
	return f
}

// exempt turns a failing finding into a skip when an exemption on its object, or else on
// its namespace, covers its check; problems with the annotations go into the message.
func (e *engine) exempt(f *finding, now time.Time, objEx, nsEx *checks.Exemption) {
	for _, ex := range []struct {
		e     *checks.Exemption
		where string
	}{{objEx, "the object"}, {nsEx, "namespace " + f.object.Namespace}} {
		if ex.e == nil {
			continue
		}
		if len(ex.e.Problems) > 0 {
			f.message += " (exemption on " + ex.where + " ignored in part: " + strings.Join(ex.e.Problems, "; ") + ")"
		}
		if ex.e.Covers(f.check, now) {
			f.result = schema.RiskResultSkip
			f.exemptionReason = ex.e.Reason
			if f.exemptionReason == "" {
				f.exemptionReason = "exempt by " + checks.AnnotationExempt + " on " + ex.where
			}
			f.exemptionUntil = ex.e.Until
			if !ex.e.Until.IsZero() {
				// Evaluate again when the exemption ends.
				e.scheduleAt(f.object, ex.e.Until)
			}
			return
		}
	}
}

// scheduleAt marks the subject o to be evaluated at t.
func (e *engine) scheduleAt(o schema.RiskObject, t time.Time) {
	res, ok := kindResources[o.Kind]
	if !ok {
		return
	}
	k := objKey{res: res, ns: o.Namespace, name: o.Name}
	if due, ok := e.dirty[k]; !ok || due.After(t) {
		e.dirty[k] = t
	}
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// summarize lists the first pieces of evidence for the message.
func summarize(ev []schema.RiskEvidence) string {
	const shown = 3
	parts := make([]string, 0, shown)
	for _, e := range ev[:min(len(ev), shown)] {
		parts = append(parts, e.Path+"="+e.Value)
	}
	s := strings.Join(parts, "; ")
	if len(ev) > shown {
		s += fmt.Sprintf(" (and %d more)", len(ev)-shown)
	}
	return s
}

// transition emits the change from prev to next (nil: no finding, the check passes or does
// not apply) on an object whose report is that of namespace ns. With an assessment id a
// finding that did not change is emitted again as open.
func (e *engine) transition(ns string, prev, next *finding, assessment, resolution string) {
	switch {
	case prev == nil && next == nil:
		return
	case prev == nil:
		e.count(next, 1)
		e.emit(next, schema.RiskStatusNew, "", assessment)
	case next == nil:
		e.count(prev, -1)
		e.emit(prev, schema.RiskStatusResolved, resolution, "")
	case prev.sig != next.sig:
		next.firstSeen = prev.firstSeen
		e.count(prev, -1)
		e.count(next, 1)
		e.emit(next, schema.RiskStatusChanged, "", assessment)
	default:
		next.firstSeen = prev.firstSeen
		if assessment != "" {
			e.emit(next, schema.RiskStatusOpen, "", assessment)
		}
		return
	}
	e.reportDirty[ns] = true
}

func (e *engine) count(f *finding, d int) {
	e.counts[countKey{f.check.Pillar, f.check.Severity, f.result}] += d
	e.countsChanged = true
}

// severityNumbers maps finding severities to OTel severity numbers; findings that hold no
// problem (resolved, skipped) are INFO.
var severityNumbers = map[string]plog.SeverityNumber{
	checks.Critical: plog.SeverityNumberError3,
	checks.High:     plog.SeverityNumberError,
	checks.Medium:   plog.SeverityNumberWarn3,
	checks.Low:      plog.SeverityNumberWarn,
	checks.Info:     plog.SeverityNumberInfo,
}

// emit writes one finding record.
func (e *engine) emit(f *finding, status, resolution, assessment string) {
	now := e.now()
	lr := e.record(schema.EventRiskFinding, now)
	result, message := f.result, f.message
	if status == schema.RiskStatusResolved {
		result = schema.RiskResultPass
		message = fmt.Sprintf("resolved (%s): %s", resolution, f.message)
	}
	sev := plog.SeverityNumberInfo
	if result == schema.RiskResultFail || result == schema.RiskResultWarn || result == schema.RiskResultError {
		sev = severityNumbers[f.check.Severity]
	}
	lr.SetSeverityNumber(sev)
	lr.SetSeverityText(strings.ToUpper(f.check.Severity))
	lr.Body().SetStr(message)
	c := f.check
	schema.RiskFindingFields.Put(lr.Attributes(), &schema.RiskFinding{
		Fingerprint: f.fp, CheckID: c.ID, Title: c.Title, Pillar: c.Pillar, Severity: c.Severity,
		Result: result, Status: status, Resolution: resolution,
		Object: f.object, WorkloadKind: f.workloadKind, WorkloadName: f.workloadName,
		Remediation: c.Remediation, Evidence: f.evidence, Steps: f.steps,
		Polaris: c.Polaris, KubeScore: c.KubeScore, Kubescape: c.Kubescape, CIS: c.CIS,
		ExemptionReason: f.exemptionReason, ExemptionUntil: f.exemptionUntil,
		FirstSeen: f.firstSeen, AssessmentID: assessment,
	})
}

func (e *engine) newBatch() {
	e.out = plog.NewLogs()
	sl := e.out.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty()
	sl.Scope().SetName(metadata.ScopeName)
	sl.Scope().SetVersion(e.r.set.BuildInfo.Version)
	e.lrs = sl.LogRecords()
}

func (e *engine) record(eventName string, now time.Time) plog.LogRecord {
	if e.lrs.Len() >= maxBatch {
		e.flush(context.Background())
	}
	lr := e.lrs.AppendEmpty()
	lr.SetEventName(eventName)
	lr.SetTimestamp(pcommon.NewTimestampFromTime(now))
	return lr
}

func (e *engine) flush(ctx context.Context) {
	n := e.lrs.Len()
	if n == 0 {
		return
	}
	ld := e.out
	e.newBatch()
	octx := e.r.obsrecv.StartLogsOp(ctx)
	err := e.r.next.ConsumeLogs(octx, ld)
	e.r.obsrecv.EndLogsOp(octx, "k8s", n, err)
	if err != nil {
		e.logger.Warn("The pipeline refused findings", zap.Int("records", n), zap.Error(err))
	}
}

// recordCounts sets the findings gauge of every pillar, severity and result seen.
func (e *engine) recordCounts(ctx context.Context) {
	if !e.countsChanged {
		return
	}
	e.countsChanged = false
	for k, n := range e.counts {
		e.r.tb.K8sRiskFindings.Record(ctx, int64(n), metric.WithAttributes(
			attribute.String("pillar", k.pillar), attribute.String("severity", k.severity), attribute.String("result", k.result)))
	}
}

func sortCounts(cs []schema.RiskCount) {
	slices.SortFunc(cs, func(a, b schema.RiskCount) int {
		return cmp.Or(cmp.Compare(a.Pillar, b.Pillar), cmp.Compare(slices.Index(schema.RiskSeverities, a.Severity), slices.Index(schema.RiskSeverities, b.Severity)), cmp.Compare(a.Result, b.Result))
	})
}

// submitReports hands the reports of the namespaces whose findings changed to the writer,
// once the first full assessment is complete (before, they would be partial).
func (e *engine) submitReports() {
	if e.reports == nil || !e.firstDone || len(e.reportDirty) == 0 {
		return
	}
	for ns := range e.reportDirty {
		var results []report.Result
		pass := 0
		for _, st := range e.byNS[ns] {
			pass += passedCount(st)
			for _, f := range st.findings {
				results = append(results, reportResult(f))
			}
		}
		for _, f := range e.chains {
			if reportNS(f.object) == ns {
				results = append(results, reportResult(f))
			}
		}
		if ns == "" {
			for _, f := range e.cluster {
				results = append(results, reportResult(f))
			}
		}
		if ns != "" && len(results) == 0 && pass == 0 {
			continue // nothing assessed there (any more)
		}
		e.reports.Submit(ns, report.Build(ns, results, pass, e.cfg.PolicyReports.MaxResults))
	}
	clear(e.reportDirty)
}

// reportResult is a finding as a PolicyReport result.
func reportResult(f *finding) report.Result {
	r := report.Result{
		Source: report.Source, Policy: f.check.ID, Rule: f.check.Title, Category: f.check.Pillar, Severity: f.check.Severity,
		Timestamp: report.Timestamp{Seconds: f.firstSeen.Unix()}, Result: f.result, Scored: !f.check.Advisory,
		Message: f.message,
		Properties: map[string]string{
			"fingerprint": f.fp,
			"remediation": f.check.Remediation,
		},
	}
	if f.object.Kind != "Cluster" {
		r.Resources = []corev1.ObjectReference{{
			APIVersion: f.object.APIVersion, Kind: f.object.Kind, Namespace: f.object.Namespace, Name: f.object.Name, UID: types.UID(f.object.UID),
		}}
	}
	if len(f.evidence) > 0 {
		r.Properties["evidence"] = clip(joinEvidence(f.evidence))
	}
	if len(f.steps) > 0 {
		parts := make([]string, 0, len(f.steps))
		for _, s := range f.steps {
			parts = append(parts, s.Link+": "+s.Object.Kind+" "+strings.TrimPrefix(s.Object.Namespace+"/"+s.Object.Name, "/")+" ("+joinEvidence(s.Evidence)+")")
		}
		r.Properties["chain"] = clip(strings.Join(parts, " -> "))
	}
	if f.exemptionReason != "" {
		r.Properties["exemption"] = f.exemptionReason
	}
	return r
}

func joinEvidence(ev []schema.RiskEvidence) string {
	parts := make([]string, len(ev))
	for i, e := range ev {
		parts[i] = e.Path + "=" + e.Value
	}
	return strings.Join(parts, "; ")
}

// clip keeps report properties small: reports live in etcd.
func clip(s string) string {
	const maxLen = 1024
	if len(s) <= maxLen {
		return s
	}
	return s[:maxLen-3] + "..."
}

// reportWritten counts and reports the outcome of a report write.
func (e *engine) reportWritten(outcome string, err error) {
	e.r.tb.K8sRiskPolicyReports.Add(context.Background(), 1, metric.WithAttributes(attribute.String("outcome", outcome)))
	if outcome == report.Failed {
		e.r.status.Set("policy reports", err)
	} else {
		e.r.status.Set("policy reports", nil)
	}
}

// checkReportCRDs tells whether the PolicyReport CRDs exist, and makes every report be
// written once they appear.
func (e *engine) checkReportCRDs() {
	if e.reports == nil {
		return
	}
	var missing []string
	for _, name := range report.CRDs {
		if _, ok := e.view.Store(k8scache.CustomResourceDefinitions).Get("", name); !ok {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		e.r.status.Set("policy report CRDs", fmt.Errorf("policy_reports is enabled but %s not installed", strings.Join(missing, " and ")+pluralIs(len(missing))))
		return
	}
	e.r.status.Set("policy report CRDs", nil)
	for ns := range e.byNS {
		e.reportDirty[ns] = true
	}
	e.reportDirty[""] = true
	e.reports.Retry()
}

func pluralIs(n int) string {
	if n == 1 {
		return " is"
	}
	return " are"
}
