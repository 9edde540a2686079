package logmap

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/kestrelai/otelcol-kestrel/internal/schema"
)

// BenchmarkMap maps a batch shaped like a node's log traffic: 1000 application log lines
// from 20 pods (two containers each, identity on the resource) plus 10 Kubernetes events.
func BenchmarkMap(b *testing.B) {
	ld := plog.NewLogs()
	for p := range 20 {
		for _, c := range []string{"app", "sidecar"} {
			r := podRecord(fmt.Sprintf("web-%d", p), c, "GET /api/v1/orders 200 12ms user=42", 0)
			rl := ld.ResourceLogs().AppendEmpty()
			require.NoError(b, rl.Resource().Attributes().FromRaw(r.resource))
			sl := rl.ScopeLogs().AppendEmpty()
			for i := range 25 {
				r.ts = clock.Add(time.Duration(i) * time.Millisecond)
				r.attrs = map[string]any{"log.file.record_number": int64(i + 1), "log.iostream": "stdout"}
				appendRecord(b, sl, r)
			}
		}
	}
	for range 10 {
		logsOf(b, eventRecord()).ResourceLogs().MoveAndAppendTo(ld.ResourceLogs())
	}
	benchmarkMap(b, ld)
}

// BenchmarkMapFlowsAndOneLogLine maps a full batch of flows that carries one application
// log line, so that what the line costs does not grow with the batch.
func BenchmarkMapFlowsAndOneLogLine(b *testing.B) {
	ld := plog.NewLogs()
	sl := ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty()
	for range 8191 {
		appendRecord(b, sl, flowRecord())
	}
	logsOf(b, podRecord("web-0", "app", "GET /api/v1/orders 200 12ms user=42", 0)).ResourceLogs().MoveAndAppendTo(ld.ResourceLogs())
	benchmarkMap(b, ld)
}

func benchmarkMap(b *testing.B, ld plog.Logs) {
	n := ld.LogRecordCount()
	m := NewMapper(nil)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		res := m.Map(ld)
		if len(res.Drops) != 0 {
			b.Fatal(res.Drops)
		}
	}
	b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkMapInventory maps a batch shaped like a namespace's inventory snapshot: 400 pods,
// 100 workloads, 50 services, 10 nodes and 5 namespaces, each with labels and owners.
func BenchmarkMapInventory(b *testing.B) {
	created := "2025-12-31T00:00:00Z"
	labels := func(prefix string, attrs map[string]any) map[string]any {
		for _, k := range []string{"app", "tier", "team", "version"} {
			attrs[prefix+k] = "value-" + k
		}
		return attrs
	}
	ld := plog.NewLogs()
	sl := ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty()
	for i := range 400 {
		appendRecord(b, sl, rec{eventName: schema.EventInventoryPod, attrs: labels(schema.AttrK8sPodLabelPrefix, map[string]any{
			schema.AttrK8sPodName: fmt.Sprintf("web-5d4f-%d", i), schema.AttrK8sPodUID: fmt.Sprintf("pod-%d", i),
			schema.AttrK8sNamespaceName: "prod", schema.AttrK8sPodIP: "10.0.0.7", schema.AttrK8sNodeName: "worker-1",
			schema.AttrK8sPodStatusPhase: "Running", schema.AttrPodReady: true, schema.AttrOwnerReferences: owners(),
			schema.AttrCreationTime: created, schema.AttrAction: schema.ActionCreate,
		})})
	}
	for i := range 100 {
		appendRecord(b, sl, rec{eventName: schema.EventInventoryWorkload, attrs: labels("k8s.deployment.label.", map[string]any{
			schema.AttrWorkloadKind: "Deployment", "k8s.deployment.name": fmt.Sprintf("web-%d", i), "k8s.deployment.uid": fmt.Sprintf("dep-%d", i),
			schema.AttrK8sNamespaceName: "prod", schema.AttrServiceAccountName: "web", schema.AttrCreationTime: created,
		})})
	}
	for i := range 50 {
		appendRecord(b, sl, rec{eventName: schema.EventInventoryService, attrs: labels(schema.AttrK8sServiceSelectorPrefix, labels(schema.AttrK8sServiceLabelPrefix, map[string]any{
			schema.AttrK8sServiceName: fmt.Sprintf("web-%d", i), schema.AttrK8sServiceUID: fmt.Sprintf("svc-%d", i),
			schema.AttrK8sNamespaceName: "prod", schema.AttrK8sServiceType: "ClusterIP", schema.AttrServiceClusterIP: "10.96.0.10",
			schema.AttrServicePorts: []any{map[string]any{"name": "http", "protocol": "TCP", "port": int64(80), "target_port": int64(8080)}},
			schema.AttrCreationTime: created,
		}))})
	}
	for i := range 10 {
		appendRecord(b, sl, rec{eventName: schema.EventInventoryNode, attrs: labels(schema.AttrK8sNodeLabelPrefix, map[string]any{
			schema.AttrK8sNodeName: fmt.Sprintf("worker-%d", i), schema.AttrK8sNodeUID: fmt.Sprintf("node-%d", i),
			schema.AttrNodeInternalIPs: []any{"10.1.0.1"}, schema.AttrNodeHostname: "worker", schema.AttrNodeReady: true,
			schema.AttrNodeInstanceType: "m5.large", schema.AttrNodeZone: "eu-west-1a", schema.AttrCreationTime: created,
		})})
	}
	for i := range 5 {
		appendRecord(b, sl, rec{eventName: schema.EventInventoryNamespace, attrs: labels(schema.AttrK8sNamespaceLabelPrefix, map[string]any{
			schema.AttrK8sNamespaceName: fmt.Sprintf("ns-%d", i), schema.AttrNamespaceUID: fmt.Sprintf("ns-%d", i), schema.AttrCreationTime: created,
		})})
	}
	benchmarkMap(b, ld)
}
