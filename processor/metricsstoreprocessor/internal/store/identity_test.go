package store

import (
	"testing"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"

	cloudv1 "github.com/kestrelai/otelcol-kestrel/api/cloud/v1"
	"github.com/kestrelai/otelcol-kestrel/internal/podowner"
)

func TestResourceAttributesOutsideTheIdentityDoNotSplitSeries(t *testing.T) {
	s, _ := newTestStore(t)
	for i, host := range []string{"a", "b", "c"} {
		res := map[string]any{"k8s.pod.name": "p", "host.name": host, "k8s.pod.uid": host, "service.name": "svc"}
		s.Ingest(newBuilder(res).gauge("g", nil, i+1, 1).md)
	}
	n, _ := s.Stats()
	require.Equal(t, 1, n)
	resp := mustQuery(t, s, &cloudv1.MetricsQueryRequest{})
	require.Equal(t, map[string]string{"service.name": "svc"}, resp.Metrics[0].Labels)
	require.Len(t, resp.Metrics[0].DataPoints, 3)
}

func TestPointAttributesWinOverResourceAttributes(t *testing.T) {
	s, _ := newTestStore(t)
	res := map[string]any{
		"k8s.namespace.name": "monitoring", "k8s.pod.name": "ksm-5f7b9c6d8f-abcde", "k8s.container.name": "ksm",
		"k8s.node.name": "n1", "k8s.deployment.name": "ksm", "service.name": "ksm",
	}
	s.Ingest(newBuilder(res).
		// Refines the resource: per-container point of the same pod.
		gauge("cpu", map[string]any{"k8s.container.name": "sidecar", "service.name": "override"}, 1, 1).
		// Describes another object (kube-state-metrics style): no resource context at all.
		gauge("kube_pod_info", map[string]any{"namespace": "shop", "pod": "web-0", "k8s.statefulset.name": "web"}, 1, 1).
		// The long key wins over the short one.
		gauge("both", map[string]any{"k8s.pod.name": "long", "pod": "short"}, 1, 1).
		md)

	resp := mustQuery(t, s, &cloudv1.MetricsQueryRequest{MetricNames: []string{"cpu"}})
	require.Len(t, resp.Metrics, 1)
	m := resp.Metrics[0]
	require.Equal(t, []string{"monitoring", "ksm", "Deployment", "ksm-5f7b9c6d8f-abcde", "sidecar", "n1"},
		[]string{m.Namespace, m.WorkloadName, m.WorkloadKind, m.PodName, m.ContainerName, m.NodeName})
	require.Equal(t, map[string]string{"service.name": "override"}, m.Labels)

	resp = mustQuery(t, s, &cloudv1.MetricsQueryRequest{MetricNames: []string{"kube_pod_info"}})
	m = resp.Metrics[0]
	require.Equal(t, []string{"shop", "web", "StatefulSet", "web-0", "", ""},
		[]string{m.Namespace, m.WorkloadName, m.WorkloadKind, m.PodName, m.ContainerName, m.NodeName})
	require.Equal(t, map[string]string{"service.name": "ksm"}, m.Labels)

	resp = mustQuery(t, s, &cloudv1.MetricsQueryRequest{MetricNames: []string{"both"}})
	require.Equal(t, "long", resp.Metrics[0].PodName)
	require.Empty(t, resp.Metrics[0].Namespace)
}

func TestWorkloadResolution(t *testing.T) {
	tests := []struct {
		name     string
		resource map[string]any
		want     podowner.Ref
	}{
		{"first present attribute sets the kind", map[string]any{"k8s.pod.name": "x", "k8s.job.name": "j", "k8s.daemonset.name": "ds"}, podowner.Ref{Kind: "DaemonSet", Name: "ds"}},
		{"replicaset with pod-template-hash", map[string]any{"k8s.pod.name": "x", "k8s.replicaset.name": "api-7d9f8b6c5d"}, podowner.Ref{Kind: "Deployment", Name: "api"}},
		{"replicaset without hash", map[string]any{"k8s.pod.name": "x", "k8s.replicaset.name": "legacy-rs"}, podowner.Ref{Kind: "ReplicaSet", Name: "legacy-rs"}},
		{"job stays a job", map[string]any{"k8s.pod.name": "x", "k8s.job.name": "backup-28934730"}, podowner.Ref{Kind: "Job", Name: "backup-28934730"}},
		{"deployment pod name", map[string]any{"k8s.pod.name": "checkout-api-5c8b9d7f4b-q9zxw"}, podowner.Ref{Kind: "Deployment", Name: "checkout-api"}},
		{"ambiguous pod name", map[string]any{"k8s.pod.name": "fluentd-x7k2p"}, podowner.Ref{}},
		{"statefulset pod name is not guessed", map[string]any{"k8s.pod.name": "db-0"}, podowner.Ref{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := newTestStore(t)
			tt.resource["k8s.namespace.name"] = "ns"
			s.Ingest(newBuilder(tt.resource).gauge("g", nil, 1, 1).md)
			m := mustQuery(t, s, &cloudv1.MetricsQueryRequest{}).Metrics[0]
			require.Equal(t, tt.want, podowner.Ref{Kind: m.WorkloadKind, Name: m.WorkloadName})
		})
	}
}

type ownerTable map[string]podowner.Ref

func (o ownerTable) Owner(namespace, pod string) (podowner.Ref, bool) {
	ref, ok := o[namespace+"/"+pod]
	return ref, ok
}

func TestExactResolverReindexesWorkloads(t *testing.T) {
	s, _ := newTestStore(t)
	s.Ingest(newBuilder(map[string]any{"k8s.namespace.name": "ns", "k8s.pod.name": "api-7d9f8b6c5d-x2k4p"}).gauge("g", nil, 1, 1).md)
	require.Len(t, mustQuery(t, s, &cloudv1.MetricsQueryRequest{WorkloadName: "api", WorkloadKind: "Deployment"}).Metrics, 1)

	s.SetResolver(ownerTable{"ns/api-7d9f8b6c5d-x2k4p": {Kind: podowner.KindStatefulSet, Name: "real-owner"}})
	require.Empty(t, mustQuery(t, s, &cloudv1.MetricsQueryRequest{WorkloadName: "api"}).Metrics)
	m := mustQuery(t, s, &cloudv1.MetricsQueryRequest{WorkloadName: "real-owner", WorkloadKind: "statefulset"}).Metrics
	require.Len(t, m, 1)
	require.Equal(t, podowner.KindStatefulSet, m[0].WorkloadKind)
}

// Once every series is gone, nothing interned may stay behind and the byte estimate returns to
// the slabs alone.
func TestEvictionFreesInternedEntries(t *testing.T) {
	s, clock := newTestStore(t)
	_, empty := s.Stats()
	for i := range 50 {
		res := map[string]any{"k8s.namespace.name": "ns", "k8s.pod.name": "pod-" + string(rune('a'+i%26)), "service.name": "svc"}
		b := newBuilder(res).gauge("g", map[string]any{"i": i}, 1, 1)
		dp := b.metric("h").SetEmptySummary().DataPoints().AppendEmpty()
		dp.SetTimestamp(pcommon.NewTimestampFromTime(at(1)))
		dp.Attributes().PutInt("i", int64(i))
		s.Ingest(b.md)
	}
	n, bytes := s.Stats()
	require.Equal(t, 100, n)
	require.Greater(t, bytes, empty)

	clock.Set(at(1).Add(25 * 3600e9))
	c := s.Evict()
	require.EqualValues(t, 100, c.SeriesEvicted[EvictRetention])
	n, bytes = s.Stats()
	require.Zero(t, n)
	require.Equal(t, int64(sizeofSeries)*slabSize+4*int64(len(s.index.buckets)), bytes)
	require.Empty(t, s.ctxIDs)
	require.Empty(t, s.labelIDs)
	require.Empty(t, s.familyIDs)
	require.Empty(t, s.syms.ids)
	require.Empty(t, s.byNamespace)
	require.Empty(t, s.byPod)
	require.Empty(t, s.byWorkload)
}
