// Package api holds the .proto sources and generated Go code of the Kestrel wire
// protocol. These tests keep the generated code in step with the .proto files and the
// .proto files in step with the protocol's field tables written out below (the wire
// contract, documented in docs/protocol.md and the .proto files).
package api

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/reflect/protoreflect"

	cloudv1 "github.com/kestrelai/otelcol-kestrel/api/cloud/v1"
)

// tool returns a pinned code generator from .tools/bin. `make test` and `make tools` install
// them there, so a machine with only Go can run this check; there is no switch to skip it.
func tool(t *testing.T, name string) string {
	t.Helper()
	pinned, err := filepath.Abs(filepath.Join("..", ".tools", "bin", name))
	require.NoError(t, err)
	if _, err := os.Stat(pinned); err != nil {
		t.Fatalf("%s not found in .tools/bin: run `make tools` (or use `make test`, which installs it)", name)
	}
	return pinned
}

// TestGeneratedCodeIsCurrent regenerates every api/*/v1/*.proto exactly as `make proto`
// does (buf with the pinned protoc-gen-go and protoc-gen-go-grpc) and compares the result
// with the committed files.
func TestGeneratedCodeIsCurrent(t *testing.T) {
	buf := tool(t, "buf")
	bin := filepath.Dir(tool(t, "protoc-gen-go"))
	tool(t, "protoc-gen-go-grpc")

	out := t.TempDir()
	cmd := exec.Command(buf, "generate", "--output", out)
	// buf finds the plugins named in buf.gen.yaml through PATH: the pinned ones come first.
	cmd.Env = append(os.Environ(), "PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	require.NoError(t, cmd.Run(), "buf generate failed: %s", stderr.String())

	generated, err := filepath.Glob(filepath.Join(out, "*", "v1", "*.go"))
	require.NoError(t, err)
	committed, err := filepath.Glob(filepath.Join("*", "v1", "*.pb.go"))
	require.NoError(t, err)

	var rel []string
	for _, g := range generated {
		r, err := filepath.Rel(out, g)
		require.NoError(t, err)
		rel = append(rel, r)
	}
	require.ElementsMatch(t, committed, rel, "generated file set differs from the committed one: run `make proto`")
	for _, r := range rel {
		want, err := os.ReadFile(filepath.Join(out, r))
		require.NoError(t, err)
		got, err := os.ReadFile(r)
		require.NoError(t, err)
		if !bytes.Equal(want, got) {
			t.Errorf("%s is stale or was edited by hand: run `make proto`", r)
		}
	}
}

// field is one row of one of the protocol's message field tables (the wire contract
// documented in docs/protocol.md and the .proto files).
type field struct {
	num   protoreflect.FieldNumber
	name  string
	typ   string // scalar kind, or message/enum name without the cloud.v1 prefix
	label string // "singular", "repeated", "map" or "oneof <name>"
}

func describe(fd protoreflect.FieldDescriptor) field {
	f := field{num: fd.Number(), name: string(fd.Name()), typ: fd.Kind().String(), label: "singular"}
	switch fd.Kind() {
	case protoreflect.MessageKind, protoreflect.GroupKind:
		f.typ = strings.TrimPrefix(string(fd.Message().FullName()), "cloud.v1.")
	case protoreflect.EnumKind:
		f.typ = strings.TrimPrefix(string(fd.Enum().FullName()), "cloud.v1.")
	}
	switch {
	case fd.IsMap():
		f.label, f.typ = "map", fmt.Sprintf("map<%s,%s>", fd.MapKey().Kind(), fd.MapValue().Kind())
	case fd.IsList():
		f.label = "repeated"
	case fd.ContainingOneof() != nil && !fd.ContainingOneof().IsSynthetic():
		f.label = "oneof " + string(fd.ContainingOneof().Name())
	}
	return f
}

func assertFields(t *testing.T, msg string, want []field) {
	t.Helper()
	desc := cloudv1.File_cloud_v1_message_proto.Messages().ByName(protoreflect.Name(msg))
	require.NotNil(t, desc, "message %s missing", msg)
	fields := desc.Fields()
	var got []field
	for i := range fields.Len() {
		got = append(got, describe(fields.Get(i)))
	}
	assert.Equal(t, want, got, "cloud.v1.%s differs from the protocol's field table (docs/protocol.md)", msg)
}

func TestStreamDataRequestMatchesSpec(t *testing.T) {
	desc := (&cloudv1.StreamDataRequest{}).ProtoReflect().Descriptor()
	// Field 23 (the removed OTelMetricBatch) must stay reserved so nobody reuses it.
	assert.True(t, desc.ReservedRanges().Has(23), "StreamDataRequest must reserve field 23")
	assert.Nil(t, desc.Fields().ByNumber(23))

	const o = "oneof request"
	assertFields(t, "StreamDataRequest", []field{
		{1, "flow", "Flow", o},
		{2, "network_policy", "NetworkPolicy", o},
		{3, "network_policy_with_errors", "NetworkPoliciesWithErrors", o},
		{4, "workload", "Workload", o},
		{5, "namespace", "Namespace", o},
		{6, "inventory_commit", "InventoryCommit", o},
		{7, "kubernetes_api_response", "KubernetesAPIResponse", o},
		{8, "service", "Service", o},
		{9, "shell_command_response", "ShellCommandResponse", o},
		{10, "l7_access_log", "L7AccessLog", o},
		{11, "authorization_policy", "AuthorizationPolicy", o},
		{12, "yaml_dry_run_response", "YamlDryRunResponse", o},
		{13, "yaml_apply_response", "YamlApplyResponse", o},
		{14, "pod", "Pod", o},
		{15, "certificate_renewal_response", "CertificateRenewalResponse", o},
		{16, "operator_restart_response", "OperatorRestartResponse", o},
		{17, "node", "Node", o},
		{18, "kubernetes_event", "KubernetesEvent", o},
		{19, "pod_status_change", "PodStatusChange", o},
		{20, "node_condition_change", "NodeConditionChange", o},
		{21, "workload_rollout_status", "WorkloadRolloutStatus", o},
		{22, "pod_logs", "PodLogs", o},
		{24, "metrics_query_response", "MetricsQueryResponse", o},
		{25, "operator_stats", "OperatorStats", o},
		{26, "datadog_query_response", "DatadogQueryResponse", o},
		{27, "datadog_monitor_alert", "DatadogMonitorAlert", o},
		{28, "risk_finding", "RiskFinding", o},
		{29, "risk_assessment", "RiskAssessment", o},
		{100, "sequence", "uint64", "singular"},
	})
}

func TestFlowMatchesSpec(t *testing.T) {
	const ts = "google.protobuf.Timestamp"
	assertFields(t, "Flow", []field{
		{1, "src_ip", "string", "singular"},
		{2, "dst_ip", "string", "singular"},
		{3, "src", "Endpoint", "singular"},
		{4, "dst", "Endpoint", "singular"},
		{5, "direction", "string", "singular"},
		{6, "port", "uint32", "singular"},
		{7, "protocol", "string", "singular"},
		{8, "allowed", "bool", "singular"},
		{9, "count", "int64", "singular"},
		{10, "first_seen", ts, "singular"},
		{11, "last_seen", ts, "singular"},
		{12, "ingress_allowed_by", "Policy", "repeated"},
		{13, "egress_allowed_by", "Policy", "repeated"},
	})
	assertFields(t, "Endpoint", []field{
		{1, "ns", "string", "singular"},
		{2, "kind", "string", "singular"},
		{3, "name", "string", "singular"},
		{4, "labels", "string", "repeated"},
	})
}

func TestL7AccessLogMatchesSpec(t *testing.T) {
	const ts = "google.protobuf.Timestamp"
	assertFields(t, "L7AccessLog", []field{
		{1, "timestamp", ts, "singular"},
		{2, "source", "L7Endpoint", "singular"},
		{3, "destination", "L7Endpoint", "singular"},
		{4, "protocol", "string", "singular"},
		{5, "l7_protocol", "L7ProtocolType", "singular"},
		{6, "http_data", "HTTPAccessLogData", "singular"},
		{7, "tcp_data", "TCPAccessLogData", "singular"},
		{8, "duration_ms", "int64", "singular"},
		{9, "bytes_sent", "uint64", "singular"},
		{10, "bytes_received", "uint64", "singular"},
		{11, "allowed", "bool", "singular"},
		{12, "node_id", "string", "singular"},
		{13, "cluster_name", "string", "singular"},
		{14, "count", "int64", "singular"},
		{15, "first_seen", ts, "singular"},
		{16, "last_seen", ts, "singular"},
	})
	assertFields(t, "L7Endpoint", []field{
		{1, "ip", "string", "singular"},
		{2, "port", "uint32", "singular"},
		{3, "namespace", "string", "singular"},
		{4, "kind", "string", "singular"},
		{5, "name", "string", "singular"},
		{6, "service_name", "string", "singular"},
	})
}

// TestStreamServiceMatchesSpec: the method paths are the wire contract (docs/protocol.md#streamservice).
func TestStreamServiceMatchesSpec(t *testing.T) {
	svc := cloudv1.File_cloud_v1_message_proto.Services().ByName("StreamService")
	require.NotNil(t, svc)
	assert.Equal(t, protoreflect.FullName("cloud.v1.StreamService"), svc.FullName())
	want := []string{"StreamData", "StreamControl", "StreamFlows", "StreamEvents", "StreamLogs"}
	methods := svc.Methods()
	require.Equal(t, len(want), methods.Len())
	for i, name := range want {
		m := methods.Get(i)
		assert.Equal(t, name, string(m.Name()))
		assert.True(t, m.IsStreamingClient() && m.IsStreamingServer(), "%s must be bidirectional", name)
		assert.Equal(t, name+"Request", string(m.Input().Name()))
		assert.Equal(t, name+"Response", string(m.Output().Name()))
	}
}
