package logmap

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"

	cloudv1 "github.com/kestrelai/otelcol-kestrel/api/cloud/v1"
	"github.com/kestrelai/otelcol-kestrel/internal/schema"
)

var riskTime = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// riskFinding is a chain finding with every attribute set, as the risk receiver writes it.
func riskFinding() schema.RiskFinding {
	return schema.RiskFinding{
		Fingerprint: "0f1e2d3c4b5a69788796a5b4c3d2e1f0", CheckID: "security.chain-external-to-cluster-takeover",
		Title: "Exposed workload escapes to the node with a powerful service account", Pillar: "security",
		Severity: "critical", Result: schema.RiskResultFail, Status: schema.RiskStatusChanged,
		Object:       schema.RiskObject{APIVersion: "apps/v1", Kind: "Deployment", Namespace: "shop", Name: "web", UID: "u-web"},
		WorkloadKind: "Deployment", WorkloadName: "web",
		Remediation: "Remove privileged",
		Evidence:    []schema.RiskEvidence{{Path: "spec.template.spec.containers[app].securityContext.privileged", Value: "true"}},
		Steps: []schema.RiskChainStep{
			{Link: "exposure", Object: schema.RiskObject{Kind: "Service", Namespace: "shop", Name: "web-lb", UID: "u-svc"},
				Evidence: []schema.RiskEvidence{{Path: "spec.type", Value: "LoadBalancer"}}},
			{Link: "rbac", Object: schema.RiskObject{Kind: "ServiceAccount", Namespace: "shop", Name: "web"}},
		},
		Polaris: []string{"runAsPrivileged"}, KubeScore: []string{"container-security-context-privileged"},
		Kubescape: []string{"C-0057"}, CIS: []string{"5.2.2"},
		ExemptionReason: "vendor", ExemptionUntil: riskTime.Add(time.Hour), FirstSeen: riskTime.Add(-time.Hour),
		AssessmentID: "a-1",
	}
}

func riskLogs(tb testing.TB, f *schema.RiskFinding) plog.Logs {
	tb.Helper()
	ld := plog.NewLogs()
	lr := ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords().AppendEmpty()
	lr.SetEventName(schema.EventRiskFinding)
	lr.SetTimestamp(pcommon.NewTimestampFromTime(riskTime))
	lr.Body().SetStr("shop/Deployment/web is exposed")
	schema.RiskFindingFields.Put(lr.Attributes(), f)
	return ld
}

func TestRiskFindingMapsToCloud(t *testing.T) {
	f := riskFinding()
	res := NewMapper(fixedNow).Map(riskLogs(t, &f))
	require.Empty(t, res.Drops)
	require.Len(t, res.Items, 1)
	want := &cloudv1.RiskFinding{
		Fingerprint: f.Fingerprint, CheckId: f.CheckID, Title: f.Title, Pillar: "security", Severity: "critical",
		Result: "fail", Status: "changed",
		Object:       &cloudv1.ObjectReference{ApiVersion: "apps/v1", Kind: "Deployment", Namespace: "shop", Name: "web", Uid: "u-web"},
		WorkloadKind: "Deployment", WorkloadName: "web",
		Message: "shop/Deployment/web is exposed", Remediation: "Remove privileged",
		Evidence: []*cloudv1.RiskEvidence{{Path: "spec.template.spec.containers[app].securityContext.privileged", Value: "true"}},
		ChainSteps: []*cloudv1.RiskChainStep{
			{Link: "exposure", Object: &cloudv1.ObjectReference{Kind: "Service", Namespace: "shop", Name: "web-lb", Uid: "u-svc"},
				Evidence: []*cloudv1.RiskEvidence{{Path: "spec.type", Value: "LoadBalancer"}}},
			{Link: "rbac", Object: &cloudv1.ObjectReference{Kind: "ServiceAccount", Namespace: "shop", Name: "web"}},
		},
		PolarisIds: []string{"runAsPrivileged"}, KubeScoreIds: []string{"container-security-context-privileged"},
		KubescapeIds: []string{"C-0057"}, CisIds: []string{"5.2.2"},
		ExemptionReason: "vendor", ExemptionUntil: ts("2026-03-01T13:00:00Z"), FirstSeen: ts("2026-03-01T11:00:00Z"),
		ObservedAt: ts("2026-03-01T12:00:00Z"), AssessmentId: "a-1",
	}
	assert.Empty(t, cmpDiff(want, res.Items[0].Payload))
	assert.Equal(t, schema.EventRiskFinding, res.Items[0].EventName)
}

// cmpDiff is empty when the messages are equal, else both in text form.
func cmpDiff(want, got proto.Message) string {
	if proto.Equal(want, got) {
		return ""
	}
	return "want:\n" + prototext.Format(want) + "\ngot:\n" + prototext.Format(got)
}

func TestRiskRecordsThatCannotMap(t *testing.T) {
	for name, tc := range map[string]struct {
		edit   func(m pcommon.Map)
		reason Reason
		detail string
	}{
		"no fingerprint":    {func(m pcommon.Map) { m.Remove(schema.AttrRiskFingerprint) }, ReasonMissingAttribute, schema.AttrRiskFingerprint},
		"no object kind":    {func(m pcommon.Map) { m.Remove(schema.AttrK8sObjectKind) }, ReasonMissingAttribute, schema.AttrK8sObjectKind},
		"evidence not maps": {func(m pcommon.Map) { m.PutStr(schema.AttrRiskEvidence, "x") }, ReasonInvalidAttribute, schema.AttrRiskEvidence},
		// A problem in the evidence of a step is reported against the steps attribute.
		"step evidence without path": {func(m pcommon.Map) {
			steps, _ := m.Get(schema.AttrRiskChainSteps)
			ev, _ := steps.Slice().At(0).Map().Get("evidence")
			ev.Slice().At(0).Map().Remove("path")
		}, ReasonMissingAttribute, schema.AttrRiskChainSteps},
		"bad first_seen": {func(m pcommon.Map) { m.PutStr(schema.AttrRiskFirstSeen, "yesterday") }, ReasonInvalidAttribute, schema.AttrRiskFirstSeen},
	} {
		t.Run(name, func(t *testing.T) {
			f := riskFinding()
			ld := riskLogs(t, &f)
			tc.edit(ld.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().At(0).Attributes())
			res := NewMapper(fixedNow).Map(ld)
			assert.Empty(t, res.Items)
			assert.Equal(t, []Drop{{EventName: schema.EventRiskFinding, Reason: tc.reason, Count: 1, Detail: tc.detail}}, res.Drops)
		})
	}
}

func TestRiskAssessmentMapsToCloud(t *testing.T) {
	ld := plog.NewLogs()
	lr := ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords().AppendEmpty()
	lr.SetEventName(schema.EventRiskAssessment)
	lr.SetTimestamp(pcommon.NewTimestampFromTime(riskTime))
	schema.RiskAssessmentFields.Put(lr.Attributes(), &schema.RiskAssessment{
		ID: "a-1", Started: riskTime.Add(-time.Minute), Objects: 12,
		Counts: []schema.RiskCount{{Pillar: "security", Severity: "high", Result: "fail", Count: 3}, {Pillar: "security", Severity: "high", Result: "pass", Count: 9}},
	})
	res := NewMapper(fixedNow).Map(ld)
	require.Empty(t, res.Drops)
	require.Len(t, res.Items, 1)
	assert.Empty(t, cmpDiff(&cloudv1.RiskAssessment{
		AssessmentId: "a-1", StartedAt: ts("2026-03-01T11:59:00Z"), CompletedAt: ts("2026-03-01T12:00:00Z"), Objects: 12,
		Counts: []*cloudv1.RiskCount{{Pillar: "security", Severity: "high", Result: "fail", Count: 3}, {Pillar: "security", Severity: "high", Result: "pass", Count: 9}},
	}, res.Items[0].Payload))
}
