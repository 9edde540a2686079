package chart

import (
	"bytes"
	"context"
	"encoding/base64"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"
	authnv1 "k8s.io/api/authentication/v1"
	authzv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/yaml"

	cloudv1 "github.com/kestrelai/otelcol-kestrel/api/cloud/v1"
	"github.com/kestrelai/otelcol-kestrel/internal/cloudconn"
	"github.com/kestrelai/otelcol-kestrel/internal/devcloud"
	"github.com/kestrelai/otelcol-kestrel/internal/kubeenv"
	"github.com/kestrelai/otelcol-kestrel/internal/testutil"
	"github.com/kestrelai/otelcol-kestrel/internal/testutil/cloudtest"
	"github.com/kestrelai/otelcol-kestrel/internal/testutil/relaytest"
)

const (
	serviceAccount = "system:serviceaccount:" + namespace + ":" + release
	tlsSecret      = release + "-client-tls"
	tokenSecret    = release + "-token"
	reader         = "system:serviceaccount:" + namespace + ":kestrel-ai-reader"
)

// TestInstall installs the chart with the values the Kestrel Operator's README shows
// (examples/seeds-readme, with flows) into a real kube-apiserver, checks the objects and what
// its ServiceAccounts may do, then runs the rendered collector configuration with the
// binary, authenticated as the chart's ServiceAccount, against a devcloud: the inventory
// arrives, the relay agent's flows arrive through it, a read tool answers as the reader, and
// nothing is forbidden.
func TestInstall(t *testing.T) {
	helm, collector := tools(t)
	env := kubeenv.Shared(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cs, err := kubernetes.NewForConfig(env.RestConfig())
	require.NoError(t, err)
	dyn, err := dynamic.NewForConfig(env.RestConfig())
	require.NoError(t, err)

	// Istio is not installed here: its root namespace and Telemetry CRD are (a schema-less
	// stand-in).
	_, err = cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "istio-system"}}, metav1.CreateOptions{})
	require.NoError(t, err)
	installCRD(ctx, t, dyn, "testdata/telemetry-crd.yaml", schema.GroupVersionResource{Group: "telemetry.istio.io", Version: "v1", Resource: "telemetries"})
	// The onboarding token has expired: the collector renews it at once, into the chart's
	// token Secret.
	cloud := cloudtest.Start(t, devcloud.Config{CertsDir: cloudtest.NewCerts(t, devcloud.CertOptions{TokenTTL: -time.Hour})})
	onboarding := []byte(readFile(t, filepath.Join(cloud.Certs, devcloud.TokenFile)))
	host, port, err := net.SplitHostPort(cloud.Addr())
	require.NoError(t, err)

	values := filepath.Join(examplesDir, "seeds-readme", "values.yaml")
	out, err := run(helm, "install", release, chartDir, "--kubeconfig", env.Kubeconfig(),
		"--namespace", namespace, "--create-namespace", "-f", values,
		"--set", "server.host="+host, "--set", "server.port="+port,
		// The README's values switch flows off; on here, for the relay agent.
		"--set", "operator.cilium.disableFlows=false",
		"--set-file", "auth.token="+filepath.Join(cloud.Certs, devcloud.TokenFile),
		"--set-file", "certificates.client.cert="+filepath.Join(cloud.Certs, devcloud.ClientCertFile),
		"--set-file", "certificates.client.key="+filepath.Join(cloud.Certs, devcloud.ClientKeyFile),
		"--set-file", "certificates.ca.cert="+filepath.Join(cloud.Certs, devcloud.CACertFile))
	require.NoError(t, err, out)

	// The objects are there.
	_, err = cs.AppsV1().Deployments(namespace).Get(ctx, release, metav1.GetOptions{})
	require.NoError(t, err)
	ra, err := cs.AppsV1().Deployments(namespace).Get(ctx, release+"-relay-agent", metav1.GetOptions{})
	require.NoError(t, err)
	require.NotNil(t, ra.Spec.Template.Spec.AutomountServiceAccountToken)
	assert.False(t, *ra.Spec.Template.Spec.AutomountServiceAccountToken, "the relay agent gets no ServiceAccount token")
	for _, svc := range []string{release, release + "-als", release + "-agents"} {
		_, err = cs.CoreV1().Services(namespace).Get(ctx, svc, metav1.GetOptions{})
		require.NoError(t, err, svc)
	}
	for _, sa := range []string{release, "kestrel-ai-reader"} {
		_, err = cs.CoreV1().ServiceAccounts(namespace).Get(ctx, sa, metav1.GetOptions{})
		require.NoError(t, err, sa)
	}
	_, err = dyn.Resource(schema.GroupVersionResource{Group: "telemetry.istio.io", Version: "v1", Resource: "telemetries"}).
		Namespace("istio-system").Get(ctx, release+"-als", metav1.GetOptions{})
	require.NoError(t, err)
	cm, err := cs.CoreV1().ConfigMaps(namespace).Get(ctx, release, metav1.GetOptions{})
	require.NoError(t, err)

	// Reads allowed; Secrets, writes and other identities denied.
	checkAccess(ctx, t, cs, []access{
		{serviceAccount, authzv1.ResourceAttributes{Verb: "list", Resource: "pods"}, true},
		{serviceAccount, authzv1.ResourceAttributes{Verb: "watch", Group: "apps", Resource: "deployments"}, true},
		{serviceAccount, authzv1.ResourceAttributes{Verb: "list", Resource: "nodes"}, true},
		{serviceAccount, authzv1.ResourceAttributes{Verb: "watch", Group: "networking.k8s.io", Resource: "networkpolicies"}, true},
		{serviceAccount, authzv1.ResourceAttributes{Verb: "list", Group: "rbac.authorization.k8s.io", Resource: "clusterroles"}, true},
		{serviceAccount, authzv1.ResourceAttributes{Verb: "impersonate", Resource: "serviceaccounts", Namespace: namespace, Name: "kestrel-ai-reader"}, true},
		{serviceAccount, authzv1.ResourceAttributes{Verb: "get", Resource: "secrets", Namespace: namespace}, false},
		{serviceAccount, authzv1.ResourceAttributes{Verb: "list", Resource: "secrets"}, false},
		{serviceAccount, authzv1.ResourceAttributes{Verb: "watch", Resource: "secrets", Namespace: namespace}, false},
		{serviceAccount, authzv1.ResourceAttributes{Verb: "get", Resource: "secrets", Namespace: namespace, Name: "other"}, false},
		{serviceAccount, authzv1.ResourceAttributes{Verb: "patch", Resource: "secrets", Namespace: namespace, Name: "other"}, false},
		// Its own token: read at start-up and patched by token renewals, nothing more.
		{serviceAccount, authzv1.ResourceAttributes{Verb: "get", Resource: "secrets", Namespace: namespace, Name: tokenSecret}, true},
		{serviceAccount, authzv1.ResourceAttributes{Verb: "patch", Resource: "secrets", Namespace: namespace, Name: tokenSecret}, true},
		{serviceAccount, authzv1.ResourceAttributes{Verb: "update", Resource: "secrets", Namespace: namespace, Name: tokenSecret}, false},
		{serviceAccount, authzv1.ResourceAttributes{Verb: "delete", Resource: "secrets", Namespace: namespace, Name: tokenSecret}, false},
		{serviceAccount, authzv1.ResourceAttributes{Verb: "watch", Resource: "secrets", Namespace: namespace, Name: tokenSecret}, false},
		{serviceAccount, authzv1.ResourceAttributes{Verb: "get", Resource: "secrets", Namespace: "default", Name: tokenSecret}, false},
		{serviceAccount, authzv1.ResourceAttributes{Verb: "patch", Resource: "secrets", Namespace: "default", Name: tlsSecret}, false},
		// Its own client certificate: read and patched by certificate renewals, nothing more.
		{serviceAccount, authzv1.ResourceAttributes{Verb: "get", Resource: "secrets", Namespace: namespace, Name: tlsSecret}, true},
		{serviceAccount, authzv1.ResourceAttributes{Verb: "patch", Resource: "secrets", Namespace: namespace, Name: tlsSecret}, true},
		{serviceAccount, authzv1.ResourceAttributes{Verb: "update", Resource: "secrets", Namespace: namespace, Name: tlsSecret}, false},
		{serviceAccount, authzv1.ResourceAttributes{Verb: "delete", Resource: "secrets", Namespace: namespace, Name: tlsSecret}, false},
		{serviceAccount, authzv1.ResourceAttributes{Verb: "create", Resource: "secrets", Namespace: namespace}, false},
		{serviceAccount, authzv1.ResourceAttributes{Verb: "create", Group: "apps", Resource: "deployments", Namespace: "default"}, false},
		{serviceAccount, authzv1.ResourceAttributes{Verb: "patch", Group: "apps", Resource: "deployments", Namespace: namespace, Name: release}, false},
		{serviceAccount, authzv1.ResourceAttributes{Verb: "delete", Resource: "pods", Namespace: "default"}, false},
		{serviceAccount, authzv1.ResourceAttributes{Verb: "create", Group: "networking.k8s.io", Resource: "networkpolicies", Namespace: "default"}, false},
		{serviceAccount, authzv1.ResourceAttributes{Verb: "create", Resource: "pods", Subresource: "exec", Namespace: "default"}, false},
		{serviceAccount, authzv1.ResourceAttributes{Verb: "impersonate", Resource: "serviceaccounts", Namespace: namespace, Name: "default"}, false},
		{serviceAccount, authzv1.ResourceAttributes{Verb: "impersonate", Resource: "users"}, false},
		{serviceAccount, authzv1.ResourceAttributes{Verb: "create", Group: "coordination.k8s.io", Resource: "leases", Namespace: namespace}, false},
		{reader, authzv1.ResourceAttributes{Verb: "list", Resource: "pods", Namespace: "default"}, true},
		{reader, authzv1.ResourceAttributes{Verb: "get", Resource: "secrets", Namespace: namespace}, false},
		{reader, authzv1.ResourceAttributes{Verb: "create", Group: "apps", Resource: "deployments", Namespace: "default"}, false},
	})

	// The rendered configuration, run outside the cluster as the chart's ServiceAccount.
	tr, err := cs.CoreV1().ServiceAccounts(namespace).CreateToken(ctx, release, &authnv1.TokenRequest{
		Spec: authnv1.TokenRequestSpec{ExpirationSeconds: new(int64(3600))},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	dir := t.TempDir()
	kubeconfig := writeKubeconfig(t, env, dir, tr.Status.Token)
	cfg, agentsAddr := outsideCluster(t, cm.Data["config.yaml"], dir, cloud.Certs)

	var logs syncBuffer
	stop := startProcess(t, "collector", &logs, []string{"KUBECONFIG=" + kubeconfig, "POD_NAMESPACE=" + namespace}, collector, "--config", cfg)

	cloud.WaitCommitted(t)
	relayAgentDelivers(ctx, t, cs, cloud, filepath.Join(filepath.Dir(collector), "otelcol-kestrel-agent"), agentsAddr)
	// The token renewal landed in the chart's token Secret, and it is the token in use.
	var renewedToken []byte
	require.NoError(t, wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		s, err := cs.CoreV1().Secrets(namespace).Get(ctx, tokenSecret, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		renewedToken = s.Data["token"]
		return !bytes.Equal(renewedToken, onboarding), nil
	}), "the renewed token never reached Secret %s", tokenSecret)
	st := cloud.Status()
	assert.Equal(t, 1, st.Renewals)
	assert.Equal(t, tokenExpiry(t, renewedToken).Unix(), st.Operators[0].Streams[cloudconn.StreamData].TokenExpiry.Unix(), "the Secret holds the token in use")
	cloud.WaitPayload(t, "namespace "+namespace, func(m proto.Message) bool {
		ns, ok := m.(*cloudv1.Namespace)
		return ok && ns.GetName() == namespace
	})
	// A read tool answers as the reader, through the one impersonation the chart allows.
	resp, err := cloud.SendRequest(ctx, "", &cloudv1.KubernetesAPIRequest{ApiPaths: []string{"api/v1/namespaces/" + namespace + "/serviceaccounts"}})
	require.NoError(t, err)
	res := resp.(*cloudv1.KubernetesAPIResponse).GetResults()
	require.Len(t, res, 1)
	assert.Equal(t, int32(200), res[0].GetStatusCode(), res[0].GetErrorMessage())
	assert.Contains(t, res[0].GetResponseData(), "kestrel-ai-reader")
	// Let every component's informers and first assessment run before reading the log.
	require.NoError(t, wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
		return strings.Contains(logs.String(), "Everything is ready"), nil
	}))
	// A certificate renewal goes into the client-certificate Secret, with the chart's rights.
	renewed := renewInto(ctx, t, cloud, filepath.Join(dir, "renewed"))
	live, err := cs.CoreV1().Secrets(namespace).Get(ctx, tlsSecret, metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, renewed, live.Data[corev1.TLSCertKey], "the Secret holds the renewed certificate")
	time.Sleep(5 * time.Second)
	stop()
	var forbidden []string
	for line := range strings.Lines(logs.String()) {
		if strings.Contains(strings.ToLower(line), "forbidden") {
			forbidden = append(forbidden, line)
		}
	}
	assert.Empty(t, forbidden, "the chart's RBAC must cover what the collector reads")

	// The write profile and the self-restart, switched on by an upgrade; the CRD and its
	// admission policy came with the install.
	out, err = run(helm, "upgrade", release, chartDir, "--kubeconfig", env.Kubeconfig(), "--namespace", namespace,
		"--reuse-values", "--set", "operator.changes.apply.enabled=true", "--set", "operator.restart.mode=rollout")
	require.NoError(t, err, out)
	live, err = cs.CoreV1().Secrets(namespace).Get(ctx, tlsSecret, metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, renewed, live.Data[corev1.TLSCertKey], "an upgrade with the same certificate values keeps the renewed pair")
	live, err = cs.CoreV1().Secrets(namespace).Get(ctx, tokenSecret, metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, string(renewedToken), string(live.Data["token"]), "an upgrade with the same token value keeps the renewed token")
	_, err = dyn.Resource(schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}).
		Get(ctx, "changerequests.kestrel.ai", metav1.GetOptions{})
	require.NoError(t, err)
	_, err = cs.AdmissionregistrationV1().ValidatingAdmissionPolicies().Get(ctx, "changerequests.kestrel.ai", metav1.GetOptions{})
	require.NoError(t, err)
	const changes = "system:serviceaccount:" + namespace + ":kestrel-ai-changes"
	checkAccess(ctx, t, cs, []access{
		{serviceAccount, authzv1.ResourceAttributes{Verb: "impersonate", Resource: "serviceaccounts", Namespace: namespace, Name: "kestrel-ai-changes"}, true},
		{serviceAccount, authzv1.ResourceAttributes{Verb: "patch", Group: "apps", Resource: "deployments", Namespace: namespace, Name: release}, true},
		{serviceAccount, authzv1.ResourceAttributes{Verb: "patch", Group: "apps", Resource: "deployments", Namespace: namespace, Name: "other"}, false},
		{serviceAccount, authzv1.ResourceAttributes{Verb: "create", Group: "networking.k8s.io", Resource: "networkpolicies", Namespace: "default"}, false},
		{serviceAccount, authzv1.ResourceAttributes{Verb: "get", Resource: "secrets", Namespace: namespace}, false},
		{changes, authzv1.ResourceAttributes{Verb: "create", Group: "networking.k8s.io", Resource: "networkpolicies", Namespace: "default"}, true},
		{changes, authzv1.ResourceAttributes{Verb: "patch", Group: "security.istio.io", Resource: "authorizationpolicies", Namespace: "default"}, true},
		{changes, authzv1.ResourceAttributes{Verb: "create", Group: "kestrel.ai", Resource: "changerequests", Namespace: namespace}, true},
		{changes, authzv1.ResourceAttributes{Verb: "approve", Group: "kestrel.ai", Resource: "changerequests", Namespace: namespace}, false},
		{changes, authzv1.ResourceAttributes{Verb: "delete", Group: "networking.k8s.io", Resource: "networkpolicies", Namespace: "default"}, false},
		{changes, authzv1.ResourceAttributes{Verb: "create", Group: "apps", Resource: "deployments", Namespace: "default"}, false},
		{changes, authzv1.ResourceAttributes{Verb: "get", Resource: "secrets", Namespace: "default"}, false},
	})
}

// TestInstallNodeMode installs examples/node-mode: the node agents' DaemonSet and the
// gateway's objects are created, the agents run without a ServiceAccount token and their
// ServiceAccount may read nothing, and the gateway's Secret rights are its own two Secrets.
// A cluster holds one installation (the ChangeRequest admission policy is cluster-wide), so
// this one gets an apiserver of its own.
func TestInstallNodeMode(t *testing.T) {
	helm, _ := tools(t)
	env := kubeenv.New(t, kubeenv.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cs, err := kubernetes.NewForConfig(env.RestConfig())
	require.NoError(t, err)
	certs := cloudtest.NewCerts(t, devcloud.CertOptions{})
	const rel, ns, fullname = release, namespace, release
	out, err := run(helm, "install", rel, chartDir, "--kubeconfig", env.Kubeconfig(),
		"--namespace", ns, "--create-namespace", "-f", filepath.Join(examplesDir, "node-mode", "values.yaml"),
		"--set-file", "auth.token="+filepath.Join(certs, devcloud.TokenFile),
		"--set-file", "certificates.client.cert="+filepath.Join(certs, devcloud.ClientCertFile),
		"--set-file", "certificates.client.key="+filepath.Join(certs, devcloud.ClientKeyFile),
		"--set-file", "certificates.ca.cert="+filepath.Join(certs, devcloud.CACertFile))
	require.NoError(t, err, out)

	ds, err := cs.AppsV1().DaemonSets(ns).Get(ctx, fullname+"-node-agent", metav1.GetOptions{})
	require.NoError(t, err)
	pod := ds.Spec.Template.Spec
	require.NotNil(t, pod.AutomountServiceAccountToken)
	assert.False(t, *pod.AutomountServiceAccountToken, "the agents get no ServiceAccount token")
	agentSA := pod.ServiceAccountName
	if agentSA == "" {
		agentSA = "default"
	}
	var hostPaths []string
	for _, v := range pod.Volumes {
		if v.HostPath != nil {
			hostPaths = append(hostPaths, v.HostPath.Path)
		}
	}
	assert.Equal(t, []string{"/var/run/cilium"}, hostPaths, "the one host path: the Hubble socket's directory")
	for _, m := range pod.Containers[0].VolumeMounts {
		if m.MountPath == "/var/run/cilium" {
			assert.True(t, m.ReadOnly, "the Hubble socket's directory is mounted read-only")
		}
	}
	dep, err := cs.AppsV1().Deployments(ns).Get(ctx, fullname, metav1.GetOptions{})
	require.NoError(t, err)
	agents, err := cs.CoreV1().Services(ns).Get(ctx, fullname+"-agents", metav1.GetOptions{})
	require.NoError(t, err)
	require.Len(t, agents.Spec.Ports, 1)
	assert.Equal(t, int32(4319), agents.Spec.Ports[0].Port)
	cm, err := cs.CoreV1().ConfigMaps(ns).Get(ctx, fullname, metav1.GetOptions{})
	require.NoError(t, err)
	assert.Contains(t, cm.Data["config.yaml"], "flow_merge", "the gateway merges the agents' aggregates")
	_, err = cs.CoreV1().ConfigMaps(ns).Get(ctx, fullname+"-node-agent", metav1.GetOptions{})
	require.NoError(t, err)

	agent := "system:serviceaccount:" + ns + ":" + agentSA
	gateway := "system:serviceaccount:" + ns + ":" + dep.Spec.Template.Spec.ServiceAccountName
	checkAccess(ctx, t, cs, []access{
		// The agents read only the Hubble socket: nothing in the API.
		{agent, authzv1.ResourceAttributes{Verb: "list", Resource: "pods"}, false},
		{agent, authzv1.ResourceAttributes{Verb: "get", Resource: "pods", Namespace: ns}, false},
		{agent, authzv1.ResourceAttributes{Verb: "watch", Resource: "nodes"}, false},
		{agent, authzv1.ResourceAttributes{Verb: "list", Group: "apps", Resource: "deployments"}, false},
		{agent, authzv1.ResourceAttributes{Verb: "get", Resource: "configmaps", Namespace: ns, Name: fullname + "-node-agent"}, false},
		{agent, authzv1.ResourceAttributes{Verb: "list", Resource: "secrets", Namespace: ns}, false},
		{agent, authzv1.ResourceAttributes{Verb: "get", Resource: "secrets", Namespace: ns, Name: fullname + "-token"}, false},
		{agent, authzv1.ResourceAttributes{Verb: "get", Resource: "secrets", Namespace: ns, Name: fullname + "-client-tls"}, false},
		{agent, authzv1.ResourceAttributes{Verb: "impersonate", Resource: "serviceaccounts", Namespace: ns, Name: "kestrel-ai-reader"}, false},
		{agent, authzv1.ResourceAttributes{Verb: "create", Group: "coordination.k8s.io", Resource: "leases", Namespace: ns}, false},
		// The gateway: the reads of its components, and of Secrets only its own two.
		{gateway, authzv1.ResourceAttributes{Verb: "list", Resource: "pods"}, true},
		{gateway, authzv1.ResourceAttributes{Verb: "get", Resource: "secrets", Namespace: ns, Name: fullname + "-token"}, true},
		{gateway, authzv1.ResourceAttributes{Verb: "patch", Resource: "secrets", Namespace: ns, Name: fullname + "-client-tls"}, true},
		{gateway, authzv1.ResourceAttributes{Verb: "list", Resource: "secrets", Namespace: ns}, false},
		{gateway, authzv1.ResourceAttributes{Verb: "get", Resource: "secrets", Namespace: "default", Name: fullname + "-token"}, false},
		// The integrations are off: the reader may not read their CRDs, nor the gateway any Datadog Secret.
		{reader, authzv1.ResourceAttributes{Verb: "list", Group: "argoproj.io", Resource: "rollouts"}, false},
		{reader, authzv1.ResourceAttributes{Verb: "list", Group: "argoproj.io", Resource: "applications"}, false},
		{reader, authzv1.ResourceAttributes{Verb: "list", Group: "kustomize.toolkit.fluxcd.io", Resource: "kustomizations"}, false},
		{reader, authzv1.ResourceAttributes{Verb: "list", Group: "karpenter.sh", Resource: "nodepools"}, false},
		{gateway, authzv1.ResourceAttributes{Verb: "get", Resource: "secrets", Namespace: ns, Name: "datadog"}, false},
	})
}

// TestInstallIntegrations installs examples/integrations (into an apiserver of its own, as
// TestInstallNodeMode) and checks with SubjectAccessReviews what the integrations grant: the
// reader reads their CRDs, the change identity makes exactly their writes, and the collector
// may get the Datadog keys' Secret by name and no other Secret.
func TestInstallIntegrations(t *testing.T) {
	helm, _ := tools(t)
	env := kubeenv.New(t, kubeenv.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cs, err := kubernetes.NewForConfig(env.RestConfig())
	require.NoError(t, err)
	// The Datadog keys' Secret lives in the Datadog namespace, which the chart does not create.
	_, err = cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "datadog"}}, metav1.CreateOptions{})
	require.NoError(t, err)
	certs := cloudtest.NewCerts(t, devcloud.CertOptions{})
	out, err := run(helm, "install", release, chartDir, "--kubeconfig", env.Kubeconfig(),
		"--namespace", namespace, "--create-namespace", "-f", filepath.Join(examplesDir, "integrations", "values.yaml"),
		"--set-file", "auth.token="+filepath.Join(certs, devcloud.TokenFile),
		"--set-file", "certificates.client.cert="+filepath.Join(certs, devcloud.ClientCertFile),
		"--set-file", "certificates.client.key="+filepath.Join(certs, devcloud.ClientKeyFile),
		"--set-file", "certificates.ca.cert="+filepath.Join(certs, devcloud.CACertFile))
	require.NoError(t, err, out)

	changes := "system:serviceaccount:" + namespace + ":kestrel-ai-changes"
	checkAccess(ctx, t, cs, []access{
		// The read profile.
		{reader, authzv1.ResourceAttributes{Verb: "list", Group: "argoproj.io", Resource: "rollouts"}, true},
		{reader, authzv1.ResourceAttributes{Verb: "watch", Group: "argoproj.io", Resource: "applications", Namespace: "argocd"}, true},
		{reader, authzv1.ResourceAttributes{Verb: "list", Group: "kustomize.toolkit.fluxcd.io", Resource: "kustomizations"}, true},
		{reader, authzv1.ResourceAttributes{Verb: "get", Group: "helm.toolkit.fluxcd.io", Resource: "helmreleases", Namespace: "default", Name: "x"}, true},
		{reader, authzv1.ResourceAttributes{Verb: "list", Group: "source.toolkit.fluxcd.io", Resource: "ocirepositories"}, true},
		{reader, authzv1.ResourceAttributes{Verb: "list", Group: "karpenter.sh", Resource: "nodepools"}, true},
		{reader, authzv1.ResourceAttributes{Verb: "list", Group: "karpenter.sh", Resource: "nodeclaims"}, true},
		{reader, authzv1.ResourceAttributes{Verb: "patch", Group: "argoproj.io", Resource: "rollouts", Namespace: "default", Name: "x"}, false},
		{reader, authzv1.ResourceAttributes{Verb: "delete", Group: "karpenter.sh", Resource: "nodeclaims", Name: "x"}, false},
		{reader, authzv1.ResourceAttributes{Verb: "get", Resource: "secrets", Namespace: "datadog", Name: "datadog-keys"}, false},
		// The write profile: the patches of config/rbac/integrations-write.yaml, nothing more.
		{changes, authzv1.ResourceAttributes{Verb: "patch", Group: "argoproj.io", Resource: "applications", Namespace: "argocd", Name: "x"}, true},
		{changes, authzv1.ResourceAttributes{Verb: "patch", Group: "argoproj.io", Resource: "rollouts", Subresource: "status", Namespace: "default", Name: "x"}, true},
		{changes, authzv1.ResourceAttributes{Verb: "patch", Group: "kustomize.toolkit.fluxcd.io", Resource: "kustomizations", Namespace: "default", Name: "x"}, true},
		{changes, authzv1.ResourceAttributes{Verb: "create", Group: "karpenter.sh", Resource: "nodepools"}, true},
		{changes, authzv1.ResourceAttributes{Verb: "delete", Group: "karpenter.sh", Resource: "nodeclaims", Name: "x"}, true},
		{changes, authzv1.ResourceAttributes{Verb: "delete", Group: "argoproj.io", Resource: "applications", Namespace: "argocd", Name: "x"}, false},
		{changes, authzv1.ResourceAttributes{Verb: "update", Group: "argoproj.io", Resource: "rollouts", Namespace: "default", Name: "x"}, false},
		{changes, authzv1.ResourceAttributes{Verb: "delete", Group: "karpenter.sh", Resource: "nodepools", Name: "x"}, false},
		{changes, authzv1.ResourceAttributes{Verb: "create", Group: "argoproj.io", Resource: "applications", Namespace: "argocd"}, false},
		{changes, authzv1.ResourceAttributes{Verb: "get", Resource: "secrets", Namespace: "datadog", Name: "datadog-keys"}, false},
		// The Datadog keys: get on that one Secret by name; no list, no watch, no other Secret.
		{serviceAccount, authzv1.ResourceAttributes{Verb: "get", Resource: "secrets", Namespace: "datadog", Name: "datadog-keys"}, true},
		{serviceAccount, authzv1.ResourceAttributes{Verb: "patch", Resource: "secrets", Namespace: "datadog", Name: "datadog-keys"}, false},
		{serviceAccount, authzv1.ResourceAttributes{Verb: "list", Resource: "secrets", Namespace: "datadog"}, false},
		{serviceAccount, authzv1.ResourceAttributes{Verb: "watch", Resource: "secrets", Namespace: "datadog", Name: "datadog-keys"}, false},
		{serviceAccount, authzv1.ResourceAttributes{Verb: "get", Resource: "secrets", Namespace: "datadog", Name: "datadog"}, false},
		{serviceAccount, authzv1.ResourceAttributes{Verb: "get", Resource: "secrets", Namespace: namespace, Name: "datadog-keys"}, false},
		{serviceAccount, authzv1.ResourceAttributes{Verb: "list", Resource: "secrets"}, false},
		{serviceAccount, authzv1.ResourceAttributes{Verb: "list", Group: "argoproj.io", Resource: "rollouts"}, false},
	})
}

// tokenExpiry is the exp claim of a JWT.
func tokenExpiry(t *testing.T, token []byte) time.Time {
	t.Helper()
	claims := jwt.MapClaims{}
	_, _, err := jwt.NewParser().ParseUnverified(string(token), claims)
	require.NoError(t, err)
	exp, err := claims.GetExpirationTime()
	require.NoError(t, err)
	require.NotNil(t, exp)
	return exp.Time
}

// renewInto sends the collector a CertificateRenewalRequest with a new pair from cloud's CA,
// written under prefix, requires it accepted and returns the new certificate.
func renewInto(ctx context.Context, t *testing.T, cloud *cloudtest.Cloud, prefix string) []byte {
	t.Helper()
	_, err := devcloud.IssueClientCert(cloud.Certs, prefix+".crt", prefix+".key")
	require.NoError(t, err)
	c, err := os.ReadFile(prefix + ".crt")
	require.NoError(t, err)
	k, err := os.ReadFile(prefix + ".key")
	require.NoError(t, err)
	enc := base64.StdEncoding.EncodeToString
	resp, err := cloud.SendRequest(ctx, "", &cloudv1.CertificateRenewalRequest{RequestId: "renew", ClientCert: enc(c), ClientKey: enc(k)})
	require.NoError(t, err)
	r := resp.(*cloudv1.CertificateRenewalResponse)
	require.True(t, r.GetSuccess(), r.GetErrorMessage())
	return c
}

type access struct {
	user  string
	attrs authzv1.ResourceAttributes
	allow bool
}

// checkAccess is kubectl auth can-i --as=USER for each access, as SubjectAccessReviews.
func checkAccess(ctx context.Context, t *testing.T, cs kubernetes.Interface, accesses []access) {
	t.Helper()
	for _, c := range accesses {
		saNamespace, _, _ := strings.Cut(strings.TrimPrefix(c.user, "system:serviceaccount:"), ":")
		sar, err := cs.AuthorizationV1().SubjectAccessReviews().Create(ctx, &authzv1.SubjectAccessReview{Spec: authzv1.SubjectAccessReviewSpec{
			User:               c.user,
			Groups:             []string{"system:serviceaccounts", "system:serviceaccounts:" + saNamespace, "system:authenticated"},
			ResourceAttributes: &c.attrs,
		}}, metav1.CreateOptions{})
		require.NoError(t, err)
		assert.Equal(t, c.allow, sar.Status.Allowed, "%s %+v: %s", c.user, c.attrs, sar.Status.Reason)
	}
}

// outsideCluster rewrites the pod's file paths, ports and in-cluster authentication of the
// rendered configuration for a process on this machine; everything else stays as rendered.
func outsideCluster(t *testing.T, rendered, dir, certs string) (path, agentsAddr string) {
	t.Helper()
	var cfg map[string]any
	require.NoError(t, yaml.Unmarshal([]byte(rendered), &cfg))
	// set sets a key of a component the values configured (section, component, keys...).
	set := func(value any, path ...string) {
		section, _ := cfg[path[0]].(map[string]any)
		if _, ok := section[path[1]]; !ok {
			return // not configured by these values
		}
		m := section
		for _, k := range path[1 : len(path)-1] {
			next, ok := m[k].(map[string]any)
			if !ok {
				next = map[string]any{}
				m[k] = next
			}
			m = next
		}
		m[path[len(path)-1]] = value
	}
	addr := func() string { return testutil.FreeAddr(t) }
	set(addr(), "extensions", "health_check", "endpoint")
	set(filepath.Join(dir, "queue"), "extensions", "file_storage/queue", "directory")
	set(filepath.Join(certs, devcloud.ClientCertFile), "extensions", "kestrel_command", "tls", "cert_file")
	set(filepath.Join(certs, devcloud.ClientKeyFile), "extensions", "kestrel_command", "tls", "key_file")
	set(filepath.Join(certs, devcloud.CACertFile), "extensions", "kestrel_command", "tls", "ca_file")
	set(filepath.Join(certs, devcloud.TokenFile), "extensions", "kestrel_command", "token", "file")
	set("kubeConfig", "extensions", "kestrel_command", "kubernetes", "auth_type")
	set("kubeConfig", "receivers", "k8s_inventory", "auth_type")
	set("kubeConfig", "receivers", "k8s_risk", "auth_type")
	set("kubeConfig", "receivers", "envoy_access_log", "kubernetes", "auth_type")
	set("kubeConfig", "receivers", "kestrel_tools", "kubernetes", "auth_type")
	set("kubeConfig", "processors", "metrics_store", "kubernetes", "auth_type")
	set(addr(), "receivers", "envoy_access_log", "endpoint")
	set(addr(), "receivers", "otlp", "protocols", "grpc", "endpoint")
	set(addr(), "receivers", "otlp", "protocols", "http", "endpoint")
	agentsAddr = addr()
	set(agentsAddr, "receivers", "otlp/agents", "protocols", "grpc", "endpoint")
	host, portStr, err := net.SplitHostPort(addr())
	require.NoError(t, err)
	port, err := strconv.Atoi(portStr)
	require.NoError(t, err)
	telemetry := cfg["service"].(map[string]any)["telemetry"].(map[string]any)
	telemetry["metrics"] = map[string]any{"readers": []any{map[string]any{"pull": map[string]any{"exporter": map[string]any{
		"prometheus": map[string]any{"host": host, "port": port},
	}}}}}
	return writeConfig(t, cfg, dir), agentsAddr
}

// writeConfig writes cfg as dir/config.yaml.
func writeConfig(t *testing.T, cfg map[string]any, dir string) string {
	t.Helper()
	out, err := yaml.Marshal(cfg)
	require.NoError(t, err)
	path := filepath.Join(dir, "config.yaml")
	require.NoError(t, os.WriteFile(path, out, 0o600))
	return path
}

// relayAgentDelivers runs the relay agent's configuration, as the chart installed it, with the
// image's agent binary: it follows a Hubble Relay and sends its aggregates to the collector's
// otlp/agents at agentsAddr, whose flow_merge passes them on, and the cloud receives the
// flows, exactly counted.
func relayAgentDelivers(ctx context.Context, t *testing.T, cs kubernetes.Interface, cloud *cloudtest.Cloud, agent, agentsAddr string) {
	t.Helper()
	cm, err := cs.CoreV1().ConfigMaps(namespace).Get(ctx, release+"-relay-agent", metav1.GetOptions{})
	require.NoError(t, err)
	var cfg map[string]any
	require.NoError(t, yaml.Unmarshal([]byte(cm.Data["config.yaml"]), &cfg))
	pairs := []relaytest.Pair{{Src: "frontend", Dst: "cart", Port: 8080, N: 7}, {Src: "cart", Dst: "redis", Port: 6379, N: 3}}
	// After the receiver's first "since", so that Relay sends them once it follows.
	_, relayAddr := relaytest.Serve(t, relaytest.New(relaytest.PairEvents("node-a", time.Now().Add(time.Minute), pairs)), "127.0.0.1:0")
	hubble := cfg["receivers"].(map[string]any)["hubble"].(map[string]any)
	assert.Equal(t, map[string]any{"insecure": true}, hubble["tls"], "the values' Relay is plaintext")
	hubble["endpoint"] = relayAddr
	// The agent's window, shortened so that the test waits a second for it, not 30.
	hubble["aggregation"] = map[string]any{"window": "1s"}
	otlp := cfg["exporters"].(map[string]any)["otlp_grpc"].(map[string]any)
	assert.Equal(t, release+"-agents."+namespace+".svc:4319", otlp["endpoint"], "the agents' Service")
	otlp["endpoint"] = agentsAddr
	cfg["extensions"].(map[string]any)["health_check"] = map[string]any{"endpoint": testutil.FreeAddr(t)}
	cfg["service"].(map[string]any)["telemetry"] = map[string]any{"metrics": map[string]any{"level": "none"}}
	var logs syncBuffer
	stop := startProcess(t, "relay agent", &logs, nil, agent, "--config", writeConfig(t, cfg, t.TempDir()))
	defer stop()

	sum := func(ps []proto.Message) (n int64) {
		for _, m := range ps {
			n += m.(*cloudv1.Flow).GetCount()
		}
		return n
	}
	var sent int64
	for _, p := range pairs {
		sent += int64(p.N)
	}
	got := cloud.WaitPayloads(t, cloudconn.StreamFlows, &cloudv1.Flow{}, func(ps []proto.Message) bool { return sum(ps) >= sent })
	assert.Equal(t, sent, sum(got), "the cloud counts exactly the flows Relay sent")
}

// startProcess runs bin with args and env added to its environment (with MY_POD_IP=127.0.0.1),
// logging into logs, and returns its stop: SIGTERM, then a kill after 30 s. Its log is printed
// if the test fails.
func startProcess(t *testing.T, name string, logs *syncBuffer, env []string, bin string, args ...string) (stop func()) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(append(os.Environ(), "MY_POD_IP=127.0.0.1"), env...)
	cmd.Stdout, cmd.Stderr = logs, logs
	require.NoError(t, cmd.Start())
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	}
	t.Cleanup(stop)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("%s log:\n%s", name, logs.String())
		}
	})
	return stop
}

// writeKubeconfig writes a kubeconfig that reaches env's apiserver with token.
func writeKubeconfig(t *testing.T, env *kubeenv.Env, dir, token string) string {
	t.Helper()
	rc := env.RestConfig()
	ca := rc.CAData
	if len(ca) == 0 {
		var err error
		ca, err = os.ReadFile(rc.CAFile)
		require.NoError(t, err)
	}
	path := filepath.Join(dir, "kubeconfig")
	require.NoError(t, clientcmd.WriteToFile(clientcmdapi.Config{
		Clusters:       map[string]*clientcmdapi.Cluster{"kubeenv": {Server: rc.Host, CertificateAuthorityData: ca}},
		AuthInfos:      map[string]*clientcmdapi.AuthInfo{release: {Token: token}},
		Contexts:       map[string]*clientcmdapi.Context{release: {Cluster: "kubeenv", AuthInfo: release, Namespace: namespace}},
		CurrentContext: release,
	}, path))
	return path
}

// installCRD creates the CRD in file and waits until gvr is served.
func installCRD(ctx context.Context, t *testing.T, dyn dynamic.Interface, file string, gvr schema.GroupVersionResource) {
	t.Helper()
	var obj map[string]any
	require.NoError(t, yaml.Unmarshal([]byte(readFile(t, file)), &obj))
	crds := dyn.Resource(schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"})
	_, err := crds.Create(ctx, &unstructured.Unstructured{Object: obj}, metav1.CreateOptions{})
	require.NoError(t, err)
	require.NoError(t, wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		_, err := dyn.Resource(gvr).List(ctx, metav1.ListOptions{Limit: 1})
		return err == nil, nil
	}), "%s not served", gvr)
}

// syncBuffer is a bytes.Buffer the collector's output goroutines and the test share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
