package logmap

import (
	cloudv1 "github.com/kestrelai/otelcol-kestrel/api/cloud/v1"
	"github.com/kestrelai/otelcol-kestrel/internal/schema"
)

// riskFinding maps a finding of the risk receiver; its message is the record's body, and the
// time it was evaluated the record's Timestamp.
func (b *batch) riskFinding(r *record) (int, Reason, string) {
	rd := b.reader(r)
	m := &cloudv1.RiskFinding{}
	schema.RiskFindingFields.Read(rd, m)
	m.Message = validUTF8(r.lr.Body().AsString())
	m.ObservedAt = newTimestamp(r.lr.Timestamp())
	return b.emit(rd, schema.EventRiskFinding, m)
}

// riskAssessment maps the record that closes a full assessment; its Timestamp is the end.
func (b *batch) riskAssessment(r *record) (int, Reason, string) {
	rd := b.reader(r)
	m := &cloudv1.RiskAssessment{}
	schema.RiskAssessmentFields.Read(rd, m)
	m.CompletedAt = newTimestamp(r.lr.Timestamp())
	return b.emit(rd, schema.EventRiskAssessment, m)
}
