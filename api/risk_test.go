package api

import (
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"

	cloudv1 "github.com/kestrelai/otelcol-kestrel/api/cloud/v1"
)

// The risk messages are additions of this project (docs/protocol.md#risk-findings): new
// messages and new envelope fields with new numbers.
func TestRiskMessagesMatchSpec(t *testing.T) {
	const ts = "google.protobuf.Timestamp"
	const o = "oneof request"
	assertFields(t, "StreamEventsRequest", []field{
		{1, "kubernetes_event", "KubernetesEvent", o},
		{2, "pod_status_change", "PodStatusChange", o},
		{3, "node_condition_change", "NodeConditionChange", o},
		{4, "workload_rollout_status", "WorkloadRolloutStatus", o},
		{5, "datadog_monitor_alert", "DatadogMonitorAlert", o},
		{6, "risk_finding", "RiskFinding", o},
		{7, "risk_assessment", "RiskAssessment", o},
		{100, "sequence", "uint64", "singular"},
	})
	assertFields(t, "RiskFinding", []field{
		{1, "fingerprint", "string", "singular"},
		{2, "check_id", "string", "singular"},
		{3, "title", "string", "singular"},
		{4, "pillar", "string", "singular"},
		{5, "severity", "string", "singular"},
		{6, "result", "string", "singular"},
		{7, "status", "string", "singular"},
		{8, "resolution", "string", "singular"},
		{9, "object", "ObjectReference", "singular"},
		{10, "workload_kind", "string", "singular"},
		{11, "workload_name", "string", "singular"},
		{12, "message", "string", "singular"},
		{13, "remediation", "string", "singular"},
		{14, "evidence", "RiskEvidence", "repeated"},
		{15, "chain_steps", "RiskChainStep", "repeated"},
		{16, "polaris_ids", "string", "repeated"},
		{17, "kube_score_ids", "string", "repeated"},
		{18, "kubescape_ids", "string", "repeated"},
		{19, "cis_ids", "string", "repeated"},
		{20, "exemption_reason", "string", "singular"},
		{21, "exemption_until", ts, "singular"},
		{22, "first_seen", ts, "singular"},
		{23, "observed_at", ts, "singular"},
		{24, "assessment_id", "string", "singular"},
	})
	assertFields(t, "RiskEvidence", []field{
		{1, "path", "string", "singular"},
		{2, "value", "string", "singular"},
	})
	assertFields(t, "RiskChainStep", []field{
		{1, "link", "string", "singular"},
		{2, "object", "ObjectReference", "singular"},
		{3, "evidence", "RiskEvidence", "repeated"},
	})
	assertFields(t, "RiskAssessment", []field{
		{1, "assessment_id", "string", "singular"},
		{2, "started_at", ts, "singular"},
		{3, "completed_at", ts, "singular"},
		{4, "objects", "int32", "singular"},
		{5, "counts", "RiskCount", "repeated"},
	})
	assertFields(t, "RiskCount", []field{
		{1, "pillar", "string", "singular"},
		{2, "severity", "string", "singular"},
		{3, "result", "string", "singular"},
		{4, "count", "int32", "singular"},
	})
}

// schemaWithout is cloud.v1 as a peer built before some fields existed knows it: its
// messages without the fields drop matches.
func schemaWithout(t *testing.T, drop func(*descriptorpb.FieldDescriptorProto) bool) protoreflect.FileDescriptor {
	t.Helper()
	fdp := protodesc.ToFileDescriptorProto(cloudv1.File_cloud_v1_message_proto)
	for _, m := range fdp.MessageType {
		m.Field = slices.DeleteFunc(m.Field, drop)
	}
	fd, err := protodesc.NewFile(fdp, protoregistry.GlobalFiles)
	require.NoError(t, err)
	return fd
}

// oldSchema is cloud.v1 as a server built before the risk messages knows it: the envelopes
// without their risk fields.
func oldSchema(t *testing.T) protoreflect.FileDescriptor {
	return schemaWithout(t, func(f *descriptorpb.FieldDescriptorProto) bool {
		return f.GetTypeName() == ".cloud.v1.RiskFinding" || f.GetTypeName() == ".cloud.v1.RiskAssessment"
	})
}

// An older server decodes an envelope carrying a risk message without an error, as an
// envelope with no member set (the message stays in the unknown fields), which the protocol
// says to ignore. So sending findings to it loses them but breaks nothing.
func TestOlderServerIgnoresRiskMessages(t *testing.T) {
	old := oldSchema(t)
	finding := &cloudv1.RiskFinding{Fingerprint: "f", CheckId: "security.privileged-container", Result: "fail"}
	for name, env := range map[string]proto.Message{
		"StreamDataRequest":   &cloudv1.StreamDataRequest{Request: &cloudv1.StreamDataRequest_RiskFinding{RiskFinding: finding}},
		"StreamEventsRequest": &cloudv1.StreamEventsRequest{Request: &cloudv1.StreamEventsRequest_RiskAssessment{RiskAssessment: &cloudv1.RiskAssessment{AssessmentId: "a"}}},
	} {
		t.Run(name, func(t *testing.T) {
			wire, err := proto.Marshal(env)
			require.NoError(t, err)
			md := old.Messages().ByName(protoreflect.Name(name))
			require.NotNil(t, md)
			got := dynamicpb.NewMessage(md)
			require.NoError(t, proto.Unmarshal(wire, got))
			assert.Nil(t, got.WhichOneof(md.Oneofs().ByName("request")), "no member an old server knows")
			assert.NotEmpty(t, got.GetUnknown(), "the risk message is kept as unknown fields")
		})
	}
}
