package kestreltoolsreceiver

import (
	"context"
	"fmt"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/receiver"
	"go.opentelemetry.io/collector/receiver/receivertest"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/metric/metricdata/metricdatatest"
	"go.uber.org/zap/zaptest"
	"google.golang.org/protobuf/proto"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	cloudv1 "github.com/kestrelai/otelcol-kestrel/api/cloud/v1"
	"github.com/kestrelai/otelcol-kestrel/internal/cloudconn"
	"github.com/kestrelai/otelcol-kestrel/internal/devcloud"
	"github.com/kestrelai/otelcol-kestrel/internal/k8sapi"
	"github.com/kestrelai/otelcol-kestrel/internal/kubeenv"
	"github.com/kestrelai/otelcol-kestrel/internal/schema"
	"github.com/kestrelai/otelcol-kestrel/internal/testutil"
	"github.com/kestrelai/otelcol-kestrel/internal/testutil/pipelinetest"
	"github.com/kestrelai/otelcol-kestrel/internal/testutil/toolstest"
	"github.com/kestrelai/otelcol-kestrel/receiver/kestreltoolsreceiver/internal/metadata"
	"github.com/kestrelai/otelcol-kestrel/receiver/kestreltoolsreceiver/internal/metadatatest"
)

func testMain(m *testing.M) { kubeenv.Main(m) }

// fixture is the receiver started against the shared kube-apiserver, as the collector
// ServiceAccount of toolstest (it may only impersonate the reader), answering requests from
// a devcloud through the real kestrel_command.
type fixture struct {
	p    *pipelinetest.Pipeline
	ns   string
	cs   kubernetes.Interface
	sink *consumertest.LogsSink
	rcv  receiver.Logs
}

func start(tb testing.TB, mutate func(*Config)) *fixture {
	tb.Helper()
	return startWith(tb, devcloud.Config{}, receivertest.NewNopSettings(metadata.Type), mutate)
}

// startWith starts the fixture against a devcloud with dc, with the receiver's settings set.
func startWith(tb testing.TB, dc devcloud.Config, set receiver.Settings, mutate func(*Config)) *fixture {
	tb.Helper()
	env := kubeenv.Shared(tb)
	ns := env.Namespace(tb)
	tb.Setenv("KUBECONFIG", toolstest.Setup(tb, env, ns))
	cs, err := kubernetes.NewForConfig(env.RestConfig())
	require.NoError(tb, err)
	p := pipelinetest.New(tb, dc)
	f := NewFactory()
	cfg := f.CreateDefaultConfig().(*Config)
	cfg.Kubernetes = k8sapi.Config{AuthType: k8sapi.AuthTypeKubeConfig}
	cfg.Identity.Namespace = ns
	if mutate != nil {
		mutate(cfg)
	}
	require.NoError(tb, cfg.Validate())
	sink := new(consumertest.LogsSink)
	set.Logger = zaptest.NewLogger(tb)
	rcv, err := f.CreateLogs(context.Background(), set, cfg, sink)
	require.NoError(tb, err)
	require.NoError(tb, rcv.Start(context.Background(), p.Host))
	tb.Cleanup(func() { require.NoError(tb, rcv.Shutdown(context.Background())) })
	p.Ready(tb)
	return &fixture{p: p, ns: ns, cs: cs, sink: sink, rcv: rcv}
}

func (f *fixture) api(tb testing.TB, paths ...string) *cloudv1.KubernetesAPIResponse {
	tb.Helper()
	resp, err := f.p.Cloud.SendRequest(testCtx(tb), "", &cloudv1.KubernetesAPIRequest{ApiPaths: paths})
	require.NoError(tb, err)
	return resp.(*cloudv1.KubernetesAPIResponse)
}

func (f *fixture) shell(tb testing.TB, cmds ...string) *cloudv1.ShellCommandResponse {
	tb.Helper()
	resp, err := f.p.Cloud.SendRequest(testCtx(tb), "", &cloudv1.ShellCommandRequest{Commands: cmds})
	require.NoError(tb, err)
	return resp.(*cloudv1.ShellCommandResponse)
}

func testCtx(tb testing.TB) context.Context {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	tb.Cleanup(cancel)
	return ctx
}

// deployment creates a Deployment named name in ns and waits for its pod.
func (f *fixture) deployment(t *testing.T, name string) {
	t.Helper()
	ctx := testCtx(t)
	labels := map[string]string{"app": name}
	_, err := f.cs.AppsV1().Deployments(f.ns).Create(ctx, &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](1),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "registry.k8s.io/pause:3.10"}}},
			},
		},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		pods, err := f.cs.CoreV1().Pods(f.ns).List(ctx, metav1.ListOptions{LabelSelector: "app=" + name})
		return err == nil && len(pods.Items) == 1
	}, testutil.WaitFor, 50*time.Millisecond, "the controllers create the pod")
}

// Reads run as the impersonated reader: what its RBAC allows comes back with the real
// status, what it does not is a 403 with the apiserver's message, a missing object a 404.
func TestReadsAsTheCloudIdentity(t *testing.T) {
	f := start(t, nil)
	f.deployment(t, "web")
	resp := f.api(t, "api/v1/namespaces/"+f.ns+"/pods", "/api/v1/nodes", "api/v1/namespaces/"+f.ns+"/pods/missing")
	require.Len(t, resp.GetResults(), 3)
	pods, nodes, missing := resp.GetResults()[0], resp.GetResults()[1], resp.GetResults()[2]
	assert.True(t, pods.GetSuccess(), pods.GetErrorMessage())
	assert.EqualValues(t, 200, pods.GetStatusCode())
	assert.Contains(t, pods.GetResponseData(), `"name":"web-`)
	assert.NotContains(t, pods.GetResponseData(), "managedFields")

	assert.False(t, nodes.GetSuccess())
	assert.EqualValues(t, 403, nodes.GetStatusCode())
	assert.Contains(t, nodes.GetErrorMessage(), `User "system:serviceaccount:`+f.ns+`:kestrel-ai-reader" cannot list resource "nodes"`)

	assert.EqualValues(t, 404, missing.GetStatusCode())
	assert.Equal(t, `pods "missing" not found`, missing.GetErrorMessage())

	// Audit: one record per path, with the identity and the status.
	require.Eventually(t, func() bool { return f.sink.LogRecordCount() >= 3 }, testutil.WaitFor, testutil.Tick)
	var statuses []int64
	for lr := range testutil.LogRecords(f.sink.AllLogs()...) {
		assert.Equal(t, schema.EventToolAudit, lr.EventName())
		id, _ := lr.Attributes().Get(schema.AttrToolIdentity)
		assert.Equal(t, "system:serviceaccount:"+f.ns+":kestrel-ai-reader", id.Str())
		code, _ := lr.Attributes().Get(schema.AttrHTTPResponseStatusCode)
		statuses = append(statuses, code.Int())
	}
	assert.Equal(t, []int64{200, 403, 404}, statuses)
}

// The collector may impersonate only the one ServiceAccount its Role names.
func TestImpersonationIsLimitedToTheReader(t *testing.T) {
	f := start(t, func(cfg *Config) { cfg.Identity.ServiceAccount = "default" })
	res := f.api(t, "api/v1/namespaces/"+f.ns+"/pods").GetResults()[0]
	assert.EqualValues(t, 403, res.GetStatusCode())
	assert.Contains(t, res.GetErrorMessage(), `User "system:serviceaccount:`+f.ns+`:kestrel-collector" cannot impersonate`)
}

// kubectl runs in-process as the reader; a failing command exits with a code, not the
// process; auth can-i answers "no" with exit code 1.
func TestKubectl(t *testing.T) {
	f := start(t, nil)
	f.deployment(t, "api")
	resp := f.shell(t,
		"kubectl get pods -n "+f.ns+" -o wide",
		"kubectl describe deploy api -n "+f.ns,
		"kubectl auth can-i list pods",
		"kubectl auth can-i list nodes",
		"kubectl get nosuchthings",
		"kubectl get pods -n "+f.ns+" -o 'jsonpath={.items[0].metadata.name'",
		"kubectl get nodes",
	)
	r := resp.GetResults()
	require.Len(t, r, 7)
	assert.EqualValues(t, 0, r[0].GetExitCode(), r[0].GetStderr())
	assert.Contains(t, r[0].GetStdout(), "NOMINATED NODE")
	assert.Contains(t, r[0].GetStdout(), "api-")
	assert.EqualValues(t, 0, r[1].GetExitCode(), r[1].GetStderr())
	assert.Contains(t, r[1].GetStdout(), "Name:                   api")
	assert.Equal(t, "yes\n", r[2].GetStdout())
	assert.True(t, r[2].GetSuccess())
	assert.Equal(t, "no\n", r[3].GetStdout())
	assert.EqualValues(t, 1, r[3].GetExitCode())
	assert.EqualValues(t, 1, r[4].GetExitCode())
	assert.Contains(t, r[4].GetStderr(), `the server doesn't have a resource type "nosuchthings"`)
	assert.EqualValues(t, 1, r[5].GetExitCode())
	assert.Contains(t, r[5].GetStderr(), "unclosed action")
	assert.EqualValues(t, 1, r[6].GetExitCode())
	assert.Contains(t, r[6].GetStderr(), "forbidden")
}

// Every allowed kubectl verb runs in-process and answers (top with the clear error of a
// cluster without the metrics API; logs of a pod no node runs are empty, as the apiserver
// answers kubectl too; test/e2e has the error of a node whose kubelet does not answer).
func TestEveryVerb(t *testing.T) {
	f := start(t, nil)
	f.deployment(t, "web")
	ns := f.ns
	cmds := map[string]string{
		"kubectl get deploy web -n " + ns + " -o name":                  "deployment.apps/web",
		"kubectl describe pods -n " + ns + " -l app=web":                "Controlled By:",
		"kubectl events -n " + ns:                                       "",
		"kubectl explain pods.spec.containers":                          "FIELDS:",
		"kubectl api-resources --api-group apps":                        "deployments",
		"kubectl api-versions":                                          "apps/v1",
		"kubectl version -o json":                                       `"serverVersion"`,
		"kubectl cluster-info":                                          "Kubernetes control plane",
		"kubectl rollout status deploy/web -n " + ns + " --watch=false": "Waiting for deployment",
		"kubectl rollout history deploy/web -n " + ns:                   "REVISION",
		"kubectl auth can-i get deployments -n " + ns:                   "yes",
		"kubectl logs deploy/web -n " + ns + " --tail 1":                "",
	}
	var list []string
	for c := range cmds {
		list = append(list, c)
	}
	list = append(list, "kubectl top pods -n "+ns)
	r := f.shell(t, list...).GetResults()
	require.Len(t, r, len(list))
	for i, c := range list[:len(cmds)] {
		assert.EqualValues(t, 0, r[i].GetExitCode(), "%s: %s", c, r[i].GetStderr())
		assert.Contains(t, r[i].GetStdout(), cmds[c], c)
	}
	top := r[len(cmds)]
	assert.EqualValues(t, 1, top.GetExitCode())
	assert.Contains(t, top.GetStderr(), "Metrics API not available")
}

// Commands run at the same time share no state: each sees its own namespace and output
// format (run under -race in make test-race).
func TestConcurrentKubectl(t *testing.T) {
	f := start(t, func(cfg *Config) { cfg.Limits.MaxConcurrent = 8 })
	const n = 8
	for i := range n {
		_, err := f.cs.CoreV1().ConfigMaps(f.ns).Create(testCtx(t), &corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("cm-%d", i), Labels: map[string]string{"i": fmt.Sprint(i)}},
		}, metav1.CreateOptions{})
		require.NoError(t, err)
	}
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			format := []string{"name", "json", "yaml", "wide"}[i%4]
			r := f.shell(t, fmt.Sprintf("kubectl get configmaps -n %s -l i=%d -o %s", f.ns, i, format), "kubectl get nosuch").GetResults()
			assert.EqualValues(t, 0, r[0].GetExitCode(), r[0].GetStderr())
			assert.Contains(t, r[0].GetStdout(), fmt.Sprintf("cm-%d", i))
			for j := range n {
				if j != i {
					assert.NotContains(t, r[0].GetStdout(), fmt.Sprintf("cm-%d\n", j))
				}
			}
			assert.EqualValues(t, 1, r[1].GetExitCode())
		})
	}
	wg.Wait()
}

// Requests beyond the limit wait briefly, then are answered "busy" (and audited); the
// receive loop keeps reading meanwhile.
func TestBusy(t *testing.T) {
	f := start(t, func(cfg *Config) {
		cfg.Limits.MaxConcurrent, cfg.Limits.MaxWaiting, cfg.Limits.Wait = 1, 1, 200*time.Millisecond
	})
	// A watch holds the one slot until its timeout.
	held := make(chan *cloudv1.KubernetesAPIResponse, 1)
	go func() {
		resp, err := f.p.Cloud.SendRequest(testCtx(t), "", &cloudv1.KubernetesAPIRequest{
			ApiPaths: []string{"api/v1/namespaces/" + f.ns + "/configmaps?watch=true"}, TimeoutSeconds: 4,
		})
		assert.NoError(t, err)
		held <- resp.(*cloudv1.KubernetesAPIResponse)
	}()
	require.Eventually(t, func() bool { return f.sink.LogRecordCount() == 0 && len(f.p.Cloud.Status().Operators) > 0 }, testutil.WaitFor, testutil.Tick)
	time.Sleep(300 * time.Millisecond)
	start := time.Now()
	var wg sync.WaitGroup
	var mu sync.Mutex
	busy := 0
	for range 10 {
		wg.Go(func() {
			resp := f.api(t, "version")
			if strings.HasPrefix(resp.GetGlobalErrorMessage(), "busy: ") {
				mu.Lock()
				busy++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	assert.Equal(t, 10, busy)
	assert.Less(t, time.Since(start), 3*time.Second, "busy answers come while the slot is still held")
	assert.True(t, (<-held).GetResults()[0].GetSuccess())
	require.Eventually(t, func() bool { return f.sink.LogRecordCount() == 11 }, testutil.WaitFor, testutil.Tick)
	outcomes := map[string]int{}
	for lr := range testutil.LogRecords(f.sink.AllLogs()...) {
		o, _ := lr.Attributes().Get(schema.AttrToolOutcome)
		outcomes[o.Str()]++
	}
	assert.Equal(t, map[string]int{"busy": 10, "ok": 1}, outcomes)
}

// Hostile input is refused with a reason and an audit record, and nothing runs: a command
// that would create a file leaves no file behind.
func TestHostileInput(t *testing.T) {
	f := start(t, nil)
	canary := filepath.Join(t.TempDir(), "pwned")
	cmds := []string{
		"kubectl get pods; rm -rf /",
		"kubectl get pods; touch " + canary,
		"$(curl x)",
		"$(touch " + canary + ")",
		"kubectl get pods `touch " + canary + "`",
		"kubectl get pods | sh",
		"kubectl delete pod x",
		"kubectl exec x -- sh",
		"KUBECONFIG=/x kubectl get pods",
		"touch " + canary,
		"kubectl get pods " + strings.Repeat("x", 1<<20),
	}
	sh := f.shell(t, cmds...)
	for i, r := range sh.GetResults() {
		assert.EqualValues(t, 126, r.GetExitCode(), cmds[i])
		assert.False(t, r.GetSuccess())
		assert.Contains(t, r.GetStderr(), "refused: ", cmds[i])
		assert.Empty(t, r.GetStdout())
	}
	assert.Less(t, len(sh.GetResults()[10].GetCommand()), 1024, "a huge command is not echoed back")
	assert.NoFileExists(t, canary)

	paths := []string{"../../etc/passwd", "api/v1/namespaces/x/pods/y/exec?command=sh", "%2e%2e/", "api/v1/namespaces/x/pods/y/../../secrets"}
	api := f.api(t, paths...)
	for i, r := range api.GetResults() {
		assert.EqualValues(t, 400, r.GetStatusCode(), paths[i])
		assert.Contains(t, r.GetErrorMessage(), "refused: ", paths[i])
	}

	n := len(cmds) + len(paths)
	require.Eventually(t, func() bool { return f.sink.LogRecordCount() == n }, testutil.WaitFor, testutil.Tick)
	for lr := range testutil.LogRecords(f.sink.AllLogs()...) {
		o, _ := lr.Attributes().Get(schema.AttrToolOutcome)
		reason, _ := lr.Attributes().Get(schema.AttrToolReason)
		in, _ := lr.Attributes().Get(schema.AttrToolInput)
		assert.Equal(t, "refused", o.Str(), in.Str())
		assert.NotEmpty(t, reason.Str())
		assert.LessOrEqual(t, len(in.Str()), 5<<10, "the audit keeps the start of a huge command")
	}
}

// 10,000 requests at once: every one is answered or refused as busy, and the heap stays
// bounded.
func TestTenThousandConcurrentRequests(t *testing.T) {
	if testing.Short() {
		t.Skip("10,000 requests")
	}
	f := start(t, nil)
	runtime.GC()
	var base runtime.MemStats
	runtime.ReadMemStats(&base)
	var peak atomic.Uint64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		var ms runtime.MemStats
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > peak.Load() {
				peak.Store(ms.HeapInuse)
			}
		}
	}()
	const n = 10_000
	var answered, busy atomic.Int64
	var wg sync.WaitGroup
	ctx := testCtx(t)
	for i := range n {
		wg.Go(func() {
			var req proto.Message = &cloudv1.KubernetesAPIRequest{ApiPaths: []string{"version"}}
			if i%10 == 0 {
				req = &cloudv1.ShellCommandRequest{Commands: []string{"kubectl api-versions"}}
			}
			resp, err := f.p.Cloud.SendRequest(ctx, "", req)
			if err != nil {
				t.Error(err)
				return
			}
			var global string
			var ok bool
			switch r := resp.(type) {
			case *cloudv1.KubernetesAPIResponse:
				global, ok = r.GetGlobalErrorMessage(), len(r.GetResults()) == 1 && r.GetResults()[0].GetSuccess()
			case *cloudv1.ShellCommandResponse:
				global, ok = r.GetGlobalErrorMessage(), len(r.GetResults()) == 1 && r.GetResults()[0].GetSuccess()
			}
			switch {
			case ok:
				answered.Add(1)
			case strings.HasPrefix(global, "busy: "):
				busy.Add(1)
			default:
				t.Errorf("neither answered nor busy: %v", resp)
			}
		})
	}
	wg.Wait()
	close(stop)
	<-sampled
	t.Logf("10,000 requests: %d answered, %d busy; heap in use %d MiB before, peak %d MiB",
		answered.Load(), busy.Load(), base.HeapInuse>>20, peak.Load()>>20)
	assert.EqualValues(t, n, answered.Load()+busy.Load())
	assert.Positive(t, answered.Load())
	assert.Less(t, peak.Load()-min(peak.Load(), base.HeapInuse), uint64(256<<20), "heap growth stays bounded")
	require.Eventually(t, func() bool { return f.sink.LogRecordCount() == n }, testutil.WaitFor, 50*time.Millisecond,
		"one audit record per request")
}

// An old server has no side streams: its requests arrive on StreamData and the answers go
// back there. The self-metric counts every call by tool and outcome.
func TestOldServerAndSelfMetrics(t *testing.T) {
	tel := componenttest.NewTelemetry()
	t.Cleanup(func() { require.NoError(t, tel.Shutdown(context.Background())) })
	f := startWith(t, devcloud.Config{OldServer: true}, metadatatest.NewSettings(tel), nil)

	api := f.api(t, "version", "api/v1/nodes", "../etc/passwd")
	require.Len(t, api.GetResults(), 3, api.GetGlobalErrorMessage())
	assert.EqualValues(t, 200, api.GetResults()[0].GetStatusCode())
	assert.EqualValues(t, 403, api.GetResults()[1].GetStatusCode())
	assert.EqualValues(t, 400, api.GetResults()[2].GetStatusCode())
	sh := f.shell(t, "kubectl version -o json", "kubectl delete pod x")
	require.Len(t, sh.GetResults(), 2, sh.GetGlobalErrorMessage())
	assert.EqualValues(t, 0, sh.GetResults()[0].GetExitCode(), sh.GetResults()[0].GetStderr())
	assert.EqualValues(t, 126, sh.GetResults()[1].GetExitCode())
	var answers int
	for _, r := range f.p.Cloud.Records() {
		switch r.Payload.(type) {
		case *cloudv1.KubernetesAPIResponse, *cloudv1.ShellCommandResponse:
			answers++
			assert.Equal(t, cloudconn.StreamData, r.Stream, "answered on the stream the request came on")
		}
	}
	assert.Equal(t, 2, answers)

	calls := func(tool, outcome string, n int64) metricdata.DataPoint[int64] {
		return metricdata.DataPoint[int64]{Value: n, Attributes: attribute.NewSet(
			attribute.String("tool", tool), attribute.String("outcome", outcome))}
	}
	metadatatest.AssertEqualKestrelToolsCalls(t, tel, []metricdata.DataPoint[int64]{
		calls("kubernetes_api", "ok", 1), calls("kubernetes_api", "error", 1), calls("kubernetes_api", "refused", 1),
		calls("shell", "ok", 1), calls("shell", "refused", 1),
	}, metricdatatest.IgnoreTimestamp(), metricdatatest.IgnoreExemplars())
}

// timeout_seconds is capped by max_timeout, and output beyond the caps is cut with a note:
// a watch and a rollout that would wait for a minute end at the 2 s cap; the OpenAPI
// document and a recursive explain come back cut, not failed. One request each, so that a
// slow machine cannot spend one's deadline on another.
func TestTimeoutsAndCaps(t *testing.T) {
	f := start(t, func(cfg *Config) {
		cfg.KubernetesAPI.DefaultTimeout, cfg.KubernetesAPI.MaxTimeout = 2*time.Second, 2*time.Second
		cfg.KubernetesAPI.MaxResultBytes, cfg.KubernetesAPI.MaxResponseBytes = 4096, 8192
		cfg.Shell.DefaultTimeout, cfg.Shell.MaxTimeout = 2*time.Second, 2*time.Second
		cfg.Shell.MaxOutputBytes = 4096
	})
	f.deployment(t, "web")
	ctx := testCtx(t)
	api := func(path string) (*cloudv1.KubernetesAPIResult, time.Duration) {
		t0 := time.Now()
		resp, err := f.p.Cloud.SendRequest(ctx, "", &cloudv1.KubernetesAPIRequest{TimeoutSeconds: 60, ApiPaths: []string{path}})
		require.NoError(t, err)
		r := resp.(*cloudv1.KubernetesAPIResponse).GetResults()
		require.Len(t, r, 1)
		return r[0], time.Since(t0)
	}
	shell := func(cmd string) (*cloudv1.ShellCommandResult, time.Duration) {
		t0 := time.Now()
		resp, err := f.p.Cloud.SendRequest(ctx, "", &cloudv1.ShellCommandRequest{TimeoutSeconds: 60, Commands: []string{cmd}})
		require.NoError(t, err)
		r := resp.(*cloudv1.ShellCommandResponse).GetResults()
		require.Len(t, r, 1)
		return r[0], time.Since(t0)
	}

	watch, took := api("api/v1/namespaces/" + f.ns + "/configmaps?watch=true")
	assert.Less(t, took, 10*time.Second, "60 s asked, 2 s allowed")
	assert.EqualValues(t, 200, watch.GetStatusCode(), watch.GetErrorMessage())
	openapi, _ := api("openapi/v2")
	assert.LessOrEqual(t, len(openapi.GetResponseData()), 4096)
	assert.Contains(t, openapi.GetResponseData(), "[kestrel: response truncated at", openapi.GetErrorMessage())

	explain, _ := shell("kubectl explain pods --recursive")
	assert.EqualValues(t, 0, explain.GetExitCode(), explain.GetStderr())
	assert.LessOrEqual(t, len(explain.GetStdout()), 4096)
	assert.Contains(t, explain.GetStdout(), "[kestrel: output truncated at")
	rollout, took := shell("kubectl rollout status deploy/web -n " + f.ns)
	assert.Less(t, took, 10*time.Second, "60 s asked, 2 s allowed")
	assert.EqualValues(t, 124, rollout.GetExitCode(), "the pod never becomes ready: %s", rollout.GetStderr())
	assert.Contains(t, rollout.GetStderr(), "deadline of 2s passed")

	require.Eventually(t, func() bool { return f.sink.LogRecordCount() >= 4 }, testutil.WaitFor, testutil.Tick)
	var outcomes []string
	for lr := range testutil.LogRecords(f.sink.AllLogs()...) {
		o, _ := lr.Attributes().Get(schema.AttrToolOutcome)
		outcomes = append(outcomes, o.Str())
	}
	assert.Equal(t, []string{"ok", "truncated", "truncated", "timeout"}, outcomes)
}
