package e2e

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/encoding/protojson"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	cloudv1 "github.com/kestrelai/otelcol-kestrel/api/cloud/v1"
	"github.com/kestrelai/otelcol-kestrel/internal/devcloud"
	"github.com/kestrelai/otelcol-kestrel/internal/kubeenv"
	"github.com/kestrelai/otelcol-kestrel/internal/testutil/cloudtest"
	"github.com/kestrelai/otelcol-kestrel/internal/testutil/toolstest"
)

const toolsConfig = `
receivers:
  kestrel_tools:
    kubernetes:
      auth_type: kubeConfig
    identity:
      namespace: %[1]s
%[2]s
exporters:
  nop: {}
service:
  extensions: [kestrel_command]
  pipelines:
    logs/audit:
      receivers: [kestrel_tools]
      exporters: [nop]
  telemetry:
    logs:
      level: warn
    metrics:
      level: none
`

// tools is a collector with the kestrel_tools receiver, running as the collector
// ServiceAccount of toolstest against the shared kube-apiserver, and the devcloud CLI that
// talks to it.
type tools struct {
	ctl, admin, ns string
	cs             kubernetes.Interface
	ctx            context.Context
	dc             *cloudtest.Cloud
	env            *kubeenv.Env
}

func startTools(t *testing.T) *tools {
	t.Helper()
	return startToolsWith(t, nil)
}

// startToolsWith is startTools with more kestrel_tools configuration: extra returns it
// (indented by four spaces) for the test's namespace.
func startToolsWith(t *testing.T, extra func(ns string) string) *tools {
	t.Helper()
	return startToolsWithOptions(t, toolsOptions{extra: extra})
}

// toolsOptions change the collector of startTools.
type toolsOptions struct {
	// extra is more kestrel_tools configuration, see startToolsWith.
	extra func(ns string) string
	// maxMessageMiB raises the message limit of both ends (0: the protocol's 10 MiB).
	maxMessageMiB int
	// logFile, if set, receives the collector's log at debug level.
	logFile string
}

func startToolsWithOptions(t *testing.T, opts toolsOptions) *tools {
	t.Helper()
	env := kubeenv.Shared(t)
	ns := env.Namespace(t)
	t.Setenv("KUBECONFIG", toolstest.Setup(t, env, ns))
	cs, err := kubernetes.NewForConfig(env.RestConfig())
	require.NoError(t, err)
	ctl := buildDevcloudCLI(t)
	dcCfg := devcloud.Config{AdminListen: "127.0.0.1:0"}
	if opts.maxMessageMiB > 0 {
		dcCfg.MaxMessageSize = opts.maxMessageMiB << 20
	}
	dc := cloudtest.Start(t, dcCfg)
	more := ""
	if opts.extra != nil {
		more = opts.extra(ns)
	}
	config := withConnection(t, dc, fmt.Sprintf(toolsConfig, ns, more))
	if opts.maxMessageMiB > 0 {
		config = strings.Replace(config, "kestrel_command: {", fmt.Sprintf(`kestrel_command: {"max_message_size_mib":%d,`, opts.maxMessageMiB), 1)
	}
	if opts.logFile != "" {
		config = strings.Replace(config, "      level: warn\n", fmt.Sprintf("      level: debug\n      output_paths: [%q]\n", opts.logFile), 1)
	}
	startWithConfig(t, config)
	dc.WaitCommitted(t)
	return &tools{ctl: ctl, admin: dc.AdminAddr(), ns: ns, cs: cs, ctx: testCtx(t, 3*time.Minute), dc: dc, env: env}
}

// run runs `kestrel-devcloud ctl ARGS...` and returns its output.
func (x *tools) run(t *testing.T, args ...string) string {
	t.Helper()
	var out, errOut bytes.Buffer
	cmd := exec.CommandContext(x.ctx, x.ctl, append([]string{"ctl", "--admin", x.admin}, args...)...)
	cmd.Stdout, cmd.Stderr = &out, &errOut
	require.NoError(t, cmd.Run(), errOut.String())
	return out.String()
}

// api sends paths with `ctl k8s-api --json` and returns the response.
func (x *tools) api(t *testing.T, paths ...string) *cloudv1.KubernetesAPIResponse {
	t.Helper()
	var resp cloudv1.KubernetesAPIResponse
	require.NoError(t, protojson.Unmarshal([]byte(x.run(t, append([]string{"k8s-api", "--json"}, paths...)...)), &resp))
	require.Len(t, resp.GetResults(), len(paths), resp.GetGlobalErrorMessage())
	return &resp
}

// shell sends commands with `ctl shell --json` and returns the response.
func (x *tools) shell(t *testing.T, cmds ...string) *cloudv1.ShellCommandResponse {
	t.Helper()
	var resp cloudv1.ShellCommandResponse
	require.NoError(t, protojson.Unmarshal([]byte(x.run(t, append([]string{"shell", "--json"}, cmds...)...)), &resp))
	require.Len(t, resp.GetResults(), len(cmds), resp.GetGlobalErrorMessage())
	return &resp
}

func (x *tools) deployment(t *testing.T, name string) {
	t.Helper()
	labels := map[string]string{"app": name}
	_, err := x.cs.AppsV1().Deployments(x.ns).Create(x.ctx, &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](1), Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "registry.k8s.io/pause:3.10"}}},
			},
		},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		pods, err := x.cs.CoreV1().Pods(x.ns).List(x.ctx, metav1.ListOptions{LabelSelector: "app=" + name})
		return err == nil && len(pods.Items) == 1
	}, 30*time.Second, 50*time.Millisecond)
}

// ghostPod creates a node whose kubelet endpoint is a closed port and a pod bound to it.
func (x *tools) ghostPod(t *testing.T) string {
	t.Helper()
	admin, err := kubernetes.NewForConfig(kubeenv.Shared(t).RestConfig())
	require.NoError(t, err)
	node := "ghost-" + x.ns
	_, err = admin.CoreV1().Nodes().Create(x.ctx, &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: node},
		Status: corev1.NodeStatus{
			Addresses:       []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "127.0.0.1"}},
			DaemonEndpoints: corev1.NodeDaemonEndpoints{KubeletEndpoint: corev1.DaemonEndpoint{Port: 1}},
		},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = admin.CoreV1().Nodes().Delete(context.Background(), node, metav1.DeleteOptions{}) })
	_, err = x.cs.CoreV1().Pods(x.ns).Create(x.ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "ghost"},
		Spec:       corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{Name: "app", Image: "registry.k8s.io/pause:3.10"}}},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	return "ghost"
}

// Every path form of KubernetesAPIRequest and the kubectl commands the cloud's agents use,
// through `kestrel-devcloud ctl`, the collector and a real kube-apiserver, as the reader.
func TestToolsFromCloud(t *testing.T) {
	x := startTools(t)
	x.deployment(t, "checkout")
	ns := x.ns
	pod := func() string {
		pods, err := x.cs.CoreV1().Pods(ns).List(x.ctx, metav1.ListOptions{LabelSelector: "app=checkout"})
		require.NoError(t, err)
		return pods.Items[0].Name
	}()
	// The local apiserver has no kubelet: a pod bound to a node whose kubelet does not answer
	// shows what the apiserver says when it cannot fetch logs.
	ghost := x.ghostPod(t)
	_, err := x.cs.CoreV1().Events(ns).Create(x.ctx, &corev1.Event{
		ObjectMeta:     metav1.ObjectMeta{Name: "checkout.1"},
		InvolvedObject: corev1.ObjectReference{Kind: "Pod", Namespace: ns, Name: pod},
		Reason:         "BackOff", Message: "Back-off restarting failed container", Type: "Warning",
		FirstTimestamp: metav1.Now(), LastTimestamp: metav1.Now(), Count: 3,
	}, metav1.CreateOptions{})
	require.NoError(t, err)

	forms := []struct {
		path, contains string
		code           int32
	}{
		{"api", `"versions":["v1"]`, 200},
		{"/apis", `"name":"apps"`, 200},
		{"version", `"gitVersion"`, 200},
		{"/openapi/v2", `"swagger":"2.0"`, 200},
		{"healthz", "ok", 200},
		{"/livez", "ok", 200},
		{"readyz?verbose", "readyz check passed", 200},
		{"api/v1/namespaces/" + ns + "/pods", `"kind":"PodList"`, 200},
		{"/apis/apps/v1/namespaces/" + ns + "/deployments/checkout", `"kind":"Deployment"`, 200},
		{"api/v1/namespaces/" + ns + "/pods?labelSelector=app%3Dcheckout&limit=1", `"name":"` + pod + `"`, 200},
		{"api/v1/namespaces/" + ns + "/pods?metadata=true", `"kind":"PartialObjectMetadataList"`, 200},
		{"api/v1/namespaces/" + ns + "/pods?as=Table", `"kind":"Table"`, 200},
		{"api/v1/namespaces/" + ns + "/pods/" + ghost + "/log?tailLines=10", "", 500},
		{"api/v1/namespaces/" + ns + "/pods/missing", "", 404},
		{"api/v1/nodes", "", 403},
	}
	paths := make([]string, len(forms))
	for i, f := range forms {
		paths[i] = f.path
	}
	resp := x.api(t, paths...)
	for i, f := range forms {
		r := resp.GetResults()[i]
		assert.Equal(t, f.code, r.GetStatusCode(), "%s: %s", f.path, r.GetErrorMessage())
		assert.Contains(t, r.GetResponseData(), f.contains, f.path)
		assert.NotContains(t, r.GetResponseData(), "managedFields", f.path)
		assert.Equal(t, f.code == 200, r.GetSuccess(), f.path)
	}
	logs := resp.GetResults()[12]
	assert.Contains(t, logs.GetErrorMessage(), "connection refused", "no kubelet: the apiserver says why")
	assert.Equal(t, `pods "missing" not found`, resp.GetResults()[13].GetErrorMessage())
	assert.Contains(t, resp.GetResults()[14].GetErrorMessage(), `"system:serviceaccount:`+ns+`:kestrel-ai-reader" cannot list resource "nodes"`)

	sh := x.shell(t,
		"kubectl get pods -A -o wide",
		"kubectl get deploy checkout -n "+ns+" -o yaml",
		"kubectl describe deploy checkout -n "+ns,
		"kubectl get events -n "+ns,
		"kubectl auth can-i list pods",
		"kubectl logs "+ghost+" -n "+ns+" --tail 5",
		"kubectl get pods -n "+ns+" -l app=checkout -o jsonpath='{.items[*].metadata.name}'",
		"kubectl top pods -n "+ns,
	)
	r := sh.GetResults()
	for i := range 5 {
		assert.EqualValues(t, 0, r[i].GetExitCode(), "%s: %s", r[i].GetCommand(), r[i].GetStderr())
	}
	assert.Contains(t, r[0].GetStdout(), "NOMINATED NODE")
	assert.Contains(t, r[0].GetStdout(), pod)
	assert.Contains(t, r[1].GetStdout(), "kind: Deployment")
	assert.NotContains(t, r[1].GetStdout(), "managedFields")
	assert.Contains(t, r[2].GetStdout(), "Replicas:")
	assert.Contains(t, r[3].GetStdout(), "Back-off restarting failed container")
	assert.Equal(t, "yes\n", r[4].GetStdout())
	assert.EqualValues(t, 1, r[5].GetExitCode())
	assert.Contains(t, r[5].GetStderr(), "connection refused")
	assert.Equal(t, pod, r[6].GetStdout())
	assert.EqualValues(t, 1, r[7].GetExitCode())
	assert.Contains(t, r[7].GetStderr(), "Metrics API not available")

	// The readable form prints status lines and indented JSON.
	out := x.run(t, "k8s-api", "api/v1/namespaces/"+ns+"/pods/missing")
	assert.Contains(t, out, "== GET api/v1/namespaces/"+ns+"/pods/missing → 404")
	out = x.run(t, "shell", "kubectl auth can-i delete pods")
	assert.Equal(t, "$ kubectl auth can-i delete pods\nno\n[exit 1]\n", out)
}

// marker is the value of every Secret of TestSecretsNeverLeave; no byte of any answer may
// carry it, in clear or in base64.
const marker = "kestrel-marker-7f3a9c1e"

// A Secret read in any form, by either tool, comes back without its values.
func TestSecretsNeverLeave(t *testing.T) {
	x := startTools(t)
	ns := x.ns
	b64 := base64.StdEncoding.EncodeToString([]byte(marker))
	lastApplied := fmt.Sprintf(`{"apiVersion":"v1","kind":"Secret","metadata":{"name":"applied"},"stringData":{"password":%q},"data":{"token":%q}}`, marker, b64)
	for _, s := range []*corev1.Secret{
		{ObjectMeta: metav1.ObjectMeta{Name: "db"}, Data: map[string][]byte{"password": []byte(marker)}, StringData: map[string]string{"user": marker}},
		{ObjectMeta: metav1.ObjectMeta{Name: "applied", Annotations: map[string]string{"kubectl.kubernetes.io/last-applied-configuration": lastApplied}},
			Data: map[string][]byte{"token": []byte(marker)}},
	} {
		_, err := x.cs.CoreV1().Secrets(ns).Create(x.ctx, s, metav1.CreateOptions{})
		require.NoError(t, err)
	}
	// Another object whose last-applied annotation holds a Secret.
	_, err := x.cs.CoreV1().ConfigMaps(ns).Create(x.ctx, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "settings", Annotations: map[string]string{"kubectl.kubernetes.io/last-applied-configuration": lastApplied}},
		Data:       map[string]string{"mode": "fast"},
	}, metav1.CreateOptions{})
	require.NoError(t, err)

	base := "api/v1/namespaces/" + ns
	api := x.api(t,
		base+"/secrets/db",
		base+"/secrets",
		"api/v1/secrets",
		base+"/secrets?as=Table",
		base+"/secrets?as=Table&includeObject=Object",
		base+"/secrets?metadata=true",
		base+"/secrets/applied?metadata=true",
		base+"/secrets/applied",
		base+"/configmaps/settings",
		base+"/secrets?watch=true&timeoutSeconds=1",
		"api/v1/watch/namespaces/"+ns+"/secrets?timeoutSeconds=1",
		base+"/configmaps/../secrets/db",
		base+"/configmaps/db%2F..%2F..%2Fsecrets%2Fdb",
		base+"/secrets/db?as=ConfigMap",
		"/api/v1/namespaces/"+ns+"/secrets/db/",
	)
	sh := x.shell(t,
		"kubectl get secret db -n "+ns+" -o yaml",
		"kubectl get secret db -n "+ns+" -o json",
		"kubectl get secret db -n "+ns+" -o jsonpath='{.data.password}'",
		"kubectl get secret db -n "+ns+" -o custom-columns=P:.data.password",
		"kubectl describe secret db -n "+ns,
		"kubectl get secrets -A -o yaml",
		"kubectl get secret db applied -n "+ns+" -o json",
		"kubectl get configmap settings -n "+ns+" -o yaml",
		"kubectl get secret applied -n "+ns+" -o jsonpath='{.metadata.annotations}'",
		"kubectl get --raw /api/v1/namespaces/"+ns+"/secrets/db",
		"kubectl get secret db -n "+ns+" -o go-template='{{.data.password}}'",
	)
	for _, raw := range []string{protojson.Format(api), protojson.Format(sh)} {
		assert.NotContains(t, raw, marker)
		assert.NotContains(t, raw, b64)
		assert.NotContains(t, raw, b64[:len(b64)-4], "no prefix of the base64 form either")
	}
	// The reads themselves succeeded: redaction, not failure, keeps the values in.
	for i := range 11 {
		r := api.GetResults()[i]
		assert.EqualValues(t, 200, r.GetStatusCode(), "%s: %s", r.GetApiPath(), r.GetErrorMessage())
	}
	assert.Contains(t, api.GetResults()[0].GetResponseData(), `"password":"`)
	assert.Contains(t, api.GetResults()[0].GetResponseData(), `"user":"`)
	for i := 11; i < 14; i++ {
		assert.EqualValues(t, 400, api.GetResults()[i].GetStatusCode(), api.GetResults()[i].GetApiPath())
	}
	for i, r := range sh.GetResults()[:9] {
		assert.EqualValues(t, 0, r.GetExitCode(), "%d %s: %s", i, r.GetCommand(), r.GetStderr())
	}
	assert.Contains(t, sh.GetResults()[0].GetStdout(), "password: "+base64.StdEncoding.EncodeToString([]byte("<redacted: 23 bytes>")))
	assert.Contains(t, sh.GetResults()[4].GetStdout(), "password:")
	for _, r := range sh.GetResults()[9:] {
		assert.EqualValues(t, 126, r.GetExitCode(), r.GetCommand())
	}
}
