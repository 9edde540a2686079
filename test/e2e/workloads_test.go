package e2e

import (
	"fmt"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	accesslogv3 "github.com/envoyproxy/go-control-plane/envoy/data/accesslog/v3"
	alsv3 "github.com/envoyproxy/go-control-plane/envoy/service/accesslog/v3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/timestamppb"
	"google.golang.org/protobuf/types/known/wrapperspb"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	cloudv1 "github.com/kestrelai/otelcol-kestrel/api/cloud/v1"
	"github.com/kestrelai/otelcol-kestrel/internal/devcloud"
	"github.com/kestrelai/otelcol-kestrel/internal/kubeenv"
	"github.com/kestrelai/otelcol-kestrel/internal/testutil"
	"github.com/kestrelai/otelcol-kestrel/internal/testutil/cloudtest"
)

func TestMain(m *testing.M) { kubeenv.Main(m) }

const workloadsConfig = `
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: %[1]s
  envoy_access_log:
    endpoint: %[2]s
    aggregation:
      window: 100ms
    kubernetes:
      auth_type: kubeConfig
processors:
  metrics_store:
    kubernetes:
      auth_type: kubeConfig
exporters:
  kestrel:
    connection: kestrel_command
  nop: {}
service:
  extensions: [kestrel_command]
  pipelines:
    logs:
      receivers: [envoy_access_log]
      exporters: [kestrel]
    metrics:
      receivers: [otlp]
      processors: [metrics_store]
      exporters: [nop]
  telemetry:
    logs:
      level: warn
    metrics:
      level: none
`

// With their kubernetes sections set, envoy_access_log and metrics_store name the workload
// of pods whose names say nothing about it (a StatefulSet's, a bare ReplicaSet's), from
// the owners the real kube-controller-manager gave them.
func TestWorkloadsFromTheKubernetesAPI(t *testing.T) {
	env := kubeenv.Shared(t)
	t.Setenv("KUBECONFIG", env.Kubeconfig())
	ns := env.Namespace(t)
	cs, err := kubernetes.NewForConfig(env.RestConfig())
	require.NoError(t, err)
	ctx := testCtx(t, 90*time.Second)
	spec := func(app string) corev1.PodTemplateSpec {
		return corev1.PodTemplateSpec{
			ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": app}},
			Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "registry.k8s.io/pause:3.10"}}},
		}
	}
	selector := func(app string) *metav1.LabelSelector {
		return &metav1.LabelSelector{MatchLabels: map[string]string{"app": app}}
	}
	_, err = cs.AppsV1().StatefulSets(ns).Create(ctx, &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Name: "ledger"},
		Spec:       appsv1.StatefulSetSpec{Replicas: ptr.To[int32](1), Selector: selector("ledger"), Template: spec("ledger")},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	_, err = cs.AppsV1().ReplicaSets(ns).Create(ctx, &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Name: "cache"},
		Spec:       appsv1.ReplicaSetSpec{Replicas: ptr.To[int32](1), Selector: selector("cache"), Template: spec("cache")},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	var cachePod string
	require.Eventually(t, func() bool {
		pods, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app in (ledger, cache)"})
		require.NoError(t, err)
		for _, p := range pods.Items {
			if p.Labels["app"] == "cache" {
				cachePod = p.Name
			}
		}
		return len(pods.Items) == 2
	}, 30*time.Second, 50*time.Millisecond, "the controllers create the pods")

	dc := cloudtest.Start(t, devcloud.Config{AdminListen: "127.0.0.1:0"})
	otlp, als := testutil.FreeAddr(t), testutil.FreeAddr(t)
	startWithConfig(t, withConnection(t, dc, fmt.Sprintf(workloadsConfig, otlp, als)))
	dc.WaitCommitted(t)
	operator := dc.Status().Operators[0].ID

	// Metrics with only the pod's name, as an application's SDK reports them.
	for _, p := range []string{"ledger-0", cachePod} {
		sendPodMetrics(t, otlp, pod{namespace: ns, name: p}, 1)
	}
	query := func(name, kind string) *cloudv1.MetricsQueryResponse {
		resp, err := dc.SendRequest(ctx, operator, &cloudv1.MetricsQueryRequest{
			Namespace: ns, WorkloadName: name, WorkloadKind: kind, MetricNames: []string{"app.requests"},
			StartTime: timestamppb.New(time.Now().Add(-10 * time.Minute)), EndTime: timestamppb.New(time.Now().Add(time.Minute)),
		})
		require.NoError(t, err)
		return resp.(*cloudv1.MetricsQueryResponse)
	}
	require.Eventually(t, func() bool {
		return len(query("ledger", "").GetMetrics()) == 1 && len(query("cache", "").GetMetrics()) == 1
	}, 30*time.Second, 100*time.Millisecond, "series are found by the workload their pods belong to")
	assert.Equal(t, "StatefulSet", query("ledger", "").GetMetrics()[0].GetWorkloadKind())
	assert.Equal(t, cachePod, query("cache", "ReplicaSet").GetMetrics()[0].GetPodName())

	// An Istio sidecar of ledger-0 without OWNER metadata reports its inbound requests.
	conn, err := grpc.NewClient(als, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	stream, err := alsv3.NewAccessLogServiceClient(conn).StreamAccessLogs(ctx)
	require.NoError(t, err)
	require.NoError(t, stream.Send(&alsv3.StreamAccessLogsMessage{
		Identifier: &alsv3.StreamAccessLogsMessage_Identifier{
			Node:    &corev3.Node{Id: "sidecar~10.244.3.7~ledger-0." + ns + "~" + ns + ".svc.cluster.local"},
			LogName: "envoy.access_loggers.http_grpc",
		},
		LogEntries: &alsv3.StreamAccessLogsMessage_HttpLogs{HttpLogs: &alsv3.StreamAccessLogsMessage_HTTPAccessLogEntries{
			LogEntry: []*accesslogv3.HTTPAccessLogEntry{{
				CommonProperties: &accesslogv3.AccessLogCommon{
					DownstreamRemoteAddress: sockAddr("10.244.1.10", 41000),
					UpstreamRemoteAddress:   sockAddr("10.244.3.7", 8080),
					UpstreamCluster:         "inbound|8080||",
					StartTime:               timestamppb.Now(),
				},
				Request:  &accesslogv3.HTTPRequestProperties{RequestMethod: corev3.RequestMethod_POST, Path: "/entries"},
				Response: &accesslogv3.HTTPResponseProperties{ResponseCode: wrapperspb.UInt32(201)},
			}},
		}},
	}))
	var got *cloudv1.L7AccessLog
	require.NoError(t, dc.WaitFor(ctx, func(recs []devcloud.Record) bool {
		for _, r := range recs {
			if l, ok := r.Payload.(*cloudv1.L7AccessLog); ok {
				got = l
				return true
			}
		}
		return false
	}))
	assert.Equal(t, ns, got.GetDestination().GetNamespace())
	assert.Equal(t, "StatefulSet", got.GetDestination().GetKind())
	assert.Equal(t, "ledger", got.GetDestination().GetName())
}

func sockAddr(ip string, port uint32) *corev3.Address {
	return &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
		Address: ip, PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: port},
	}}}
}
