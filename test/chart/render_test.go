package chart

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"sigs.k8s.io/yaml"

	"github.com/kestrelai/otelcol-kestrel/internal/devcloud"
)

func TestLint(t *testing.T) {
	helm, _ := tools(t)
	for _, name := range examples(t) {
		out, err := run(helm, "lint", "--strict", chartDir, "-f", filepath.Join(examplesDir, name, "values.yaml"))
		require.NoError(t, err, "%s: %s", name, out)
	}
}

// TestExamples compares helm template of every example with its rendered.yaml
// (UPDATE_GOLDEN=1 rewrites them) and runs its collector configuration through
// `otelcol-kestrel validate`.
func TestExamples(t *testing.T) {
	helm, collector := tools(t)
	for _, name := range examples(t) {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join(examplesDir, name)
			out, err := template(helm, "-f", filepath.Join(dir, "values.yaml"))
			require.NoError(t, err)
			golden := filepath.Join(dir, "rendered.yaml")
			if os.Getenv("UPDATE_GOLDEN") == "1" {
				require.NoError(t, os.WriteFile(golden, []byte(out), 0o600))
			}
			assert.Equal(t, readFile(t, golden), out, "helm template differs from %s (UPDATE_GOLDEN=1 rewrites it)", golden)

			objs := parse(t, out)
			configs := []string{collectorConfig(t, objs)}
			binaries := []string{collector}
			// The flow agents have configurations of their own, which the slim agent must accept.
			for _, agent := range agentNames {
				if cm, ok := find(objs, "ConfigMap", release+"-"+agent); ok {
					cfg, _ := cm.Data["config.yaml"].(string)
					require.NotEmpty(t, cfg)
					configs = append(configs, cfg)
					binaries = append(binaries, filepath.Join(filepath.Dir(collector), "otelcol-kestrel-agent"))
				}
			}
			for i, c := range configs {
				cfg := filepath.Join(t.TempDir(), fmt.Sprint("config", i, ".yaml"))
				require.NoError(t, os.WriteFile(cfg, podCertificates(t, c), 0o600))
				res, err := runEnv([]string{"MY_POD_IP=10.0.0.1", "POD_NAME=" + release + "-0", "POD_NAMESPACE=" + namespace, "POD_UID=1f0c", "NODE_NAME=node-a"}, binaries[i], "validate", "--config", cfg)
				require.NoError(t, err, res)
			}
		})
	}
}

// agentNames are the suffixes of the flow agents' workloads and ConfigMaps.
var agentNames = []string{"relay-agent", "node-agent"}

// podCertificates points kestrel_command's TLS files, which the pod mounts from Secrets, at
// generated ones: validate loads them, so a missing file fails it.
func podCertificates(t *testing.T, rendered string) []byte {
	t.Helper()
	var cfg map[string]any
	require.NoError(t, yaml.Unmarshal([]byte(rendered), &cfg))
	extensions, _ := cfg["extensions"].(map[string]any)
	if command, ok := extensions["kestrel_command"].(map[string]any); ok {
		certs := t.TempDir()
		require.NoError(t, devcloud.GenerateCerts(certs, devcloud.CertOptions{}))
		tls, _ := command["tls"].(map[string]any)
		require.NotNil(t, tls, "kestrel_command has TLS settings")
		tls["ca_file"] = filepath.Join(certs, devcloud.CACertFile)
		tls["cert_file"] = filepath.Join(certs, devcloud.ClientCertFile)
		tls["key_file"] = filepath.Join(certs, devcloud.ClientKeyFile)
	}
	out, err := yaml.Marshal(cfg)
	require.NoError(t, err)
	return out
}

// TestConfigFollowsValues checks what each switch turns on in the collector configuration.
func TestConfigFollowsValues(t *testing.T) {
	helm, _ := tools(t)
	type pipelines struct {
		Service struct {
			Pipelines map[string]struct {
				Receivers  []string `json:"receivers"`
				Processors []string `json:"processors"`
			} `json:"pipelines"`
		} `json:"service"`
		Receivers  map[string]map[string]any `json:"receivers"`
		Processors map[string]map[string]any `json:"processors"`
	}
	render := func(t *testing.T, set ...string) (pipelines, []object) {
		t.Helper()
		args := []string{"-f", filepath.Join(examplesDir, "cilium-only", "values.yaml")}
		for _, s := range set {
			args = append(args, "--set", s)
		}
		out, err := template(helm, args...)
		require.NoError(t, err)
		objs := parse(t, out)
		var p pipelines
		require.NoError(t, yaml.Unmarshal([]byte(collectorConfig(t, objs)), &p))
		return p, objs
	}

	// Relay mode: one agent follows Relay and sends its aggregates to the collector, which
	// merges them in a pipeline of their own.
	p, objs := render(t)
	assert.Equal(t, []string{"k8s_inventory", "k8s_risk"}, p.Service.Pipelines["logs"].Receivers)
	assert.Equal(t, []string{"otlp/agents"}, p.Service.Pipelines["logs/flows"].Receivers)
	assert.Equal(t, []string{"memory_limiter", "flow_merge", "batch"}, p.Service.Pipelines["logs/flows"].Processors)
	assert.NotContains(t, p.Receivers, "hubble", "the collector does not follow Relay itself")
	assert.Equal(t, map[string]any{"window": "0s"}, p.Processors["flow_merge"], "one sender: nothing to merge")
	assert.NotContains(t, p.Receivers["k8s_inventory"], "leader_election")
	_, ok := find(objs, "PodDisruptionBudget", "")
	assert.False(t, ok, "no PodDisruptionBudget with one replica")
	_, ok = find(objs, "Service", release+"-agents")
	assert.True(t, ok, "the agents' Service")
	_, ok = find(objs, "DaemonSet", release+"-node-agent")
	assert.False(t, ok, "no node agents in relay mode")
	ra, ok := find(objs, "Deployment", release+"-relay-agent")
	require.True(t, ok)
	assert.Contains(t, ra.raw, "replicas: 1\n")
	assert.Contains(t, ra.raw, "type: Recreate", "never two followers of Relay")
	assert.Contains(t, ra.raw, "automountServiceAccountToken: false")
	assert.Contains(t, ra.raw, "command: [/otelcol-kestrel-agent]", "the image's slim agent")
	assert.Contains(t, ra.raw, "- name: GOGC\n              value: \"50\"")
	assert.Contains(t, ra.raw, "- name: GOMAXPROCS\n              value: \"1\"")
	assert.NotContains(t, ra.raw, "hostPath")
	assert.NotContains(t, ra.raw, "hubble-tls", "plaintext Relay: no certificates")
	cm, _ := find(objs, "ConfigMap", release+"-relay-agent")
	assert.Contains(t, cm.Data["config.yaml"], "endpoint: hubble-relay.kube-system.svc:80\n")
	assert.Contains(t, cm.Data["config.yaml"], "endpoint: "+release+"-agents."+namespace+".svc:4319")

	// Relay over TLS: the agent mounts the client certificates; the collector too, for
	// kestrel_tools' hubble observe. More collector replicas are fine: there is still one agent.
	_, objs = render(t, "operator.cilium.hubble.tls.existingSecret=relay-certs", "replicaCount=2", "relayAgent.resources.limits.memory=128Mi")
	ra, _ = find(objs, "Deployment", release+"-relay-agent")
	assert.Contains(t, ra.raw, "secretName: relay-certs")
	assert.Contains(t, ra.raw, "mountPath: /etc/kestrel/hubble")
	assert.Contains(t, ra.raw, `value: "102MiB"`, "GOMEMLIMIT follows the agent's memory limit")
	cm, _ = find(objs, "ConfigMap", release+"-relay-agent")
	assert.Contains(t, cm.Data["config.yaml"], "ca_file: /etc/kestrel/hubble/ca.crt")
	dep, _ := find(objs, "Deployment", release)
	assert.Contains(t, dep.raw, "secretName: relay-certs")

	p, objs = render(t, "operator.cilium.disableFlows=true", "operator.istio.enabled=true", "operator.otel.enabled=true",
		"operator.metricsStore.maxSeries=5", "replicaCount=2", "resources.limits.memory=1Gi")
	assert.Equal(t, []string{"k8s_inventory", "k8s_risk", "envoy_access_log"}, p.Service.Pipelines["logs"].Receivers)
	assert.Equal(t, []string{"otlp"}, p.Service.Pipelines["metrics"].Receivers)
	assert.InDelta(t, 5, p.Processors["metrics_store"]["max_series"], 0)
	assert.InDelta(t, 819, p.Processors["memory_limiter"]["limit_mib"], 0)
	assert.Equal(t, map[string]any{"lease_name": release + "-inventory"}, p.Receivers["k8s_inventory"]["leader_election"])
	for _, kind := range []string{"PodDisruptionBudget", "Telemetry"} {
		_, ok := find(objs, kind, "")
		assert.True(t, ok, kind)
	}
	for _, svc := range []string{release, release + "-als"} {
		_, ok := find(objs, "Service", svc)
		assert.True(t, ok, svc)
	}
	for _, agent := range agentNames {
		_, ok := find(objs, "ConfigMap", release+"-"+agent)
		assert.False(t, ok, "no flows, no %s", agent)
	}
	_, ok = find(objs, "Service", release+"-agents")
	assert.False(t, ok, "no flows, no agents' Service")
	dep, _ = find(objs, "Deployment", release)
	assert.Contains(t, dep.raw, `value: "819MiB"`, "GOMEMLIMIT follows the memory limit")

	// Node-agent mode: no hubble in the Deployment; the agents' aggregates are merged in a
	// pipeline of their own, and the DaemonSet reads the node's socket.
	p, objs = render(t, "operator.cilium.mode=node", "replicaCount=2")
	assert.Equal(t, []string{"k8s_inventory", "k8s_risk"}, p.Service.Pipelines["logs"].Receivers)
	assert.Equal(t, []string{"otlp/agents"}, p.Service.Pipelines["logs/flows"].Receivers)
	assert.Equal(t, []string{"memory_limiter", "flow_merge", "batch"}, p.Service.Pipelines["logs/flows"].Processors)
	assert.Empty(t, p.Processors["flow_merge"], "the nodes' aggregates are merged over the default window")
	_, ok = find(objs, "Service", release+"-agents")
	assert.True(t, ok, "the agents' Service")
	ds, ok := find(objs, "DaemonSet", release+"-node-agent")
	require.True(t, ok)
	assert.Contains(t, ds.raw, "supplementalGroups: [0]")
	assert.Contains(t, ds.raw, "automountServiceAccountToken: false")
	assert.Contains(t, ds.raw, "command: [/otelcol-kestrel-agent]", "the image's slim agent")
	assert.Contains(t, ds.raw, "- name: GOGC\n              value: \"50\"", "the agents' GC target")
	assert.Contains(t, ds.raw, "- name: GOMAXPROCS\n              value: \"1\"", "the agents run on one thread")
	assert.Contains(t, ds.raw, "mountPath: /var/run/cilium\n              readOnly: true")
	_, ok = find(objs, "Deployment", release+"-relay-agent")
	assert.False(t, ok, "no relay agent in node mode")
	cm, _ = find(objs, "ConfigMap", release+"-node-agent")
	assert.Contains(t, cm.Data["config.yaml"], "endpoint: unix:///var/run/cilium/hubble.sock")
	assert.Contains(t, cm.Data["config.yaml"], "endpoint: "+release+"-agents."+namespace+".svc:4319")

	_, objs = render(t, "operator.cilium.mode=node", "nodeAgent.gomaxprocs=null")
	ds, _ = find(objs, "DaemonSet", release+"-node-agent")
	assert.NotContains(t, ds.raw, "GOMAXPROCS", "null leaves Go's default")

	// config: is merged into the generated configuration, and a change rolls the pod.
	before, _ := find(objs, "Deployment", release)
	p, objs = render(t, "operator.cilium.disableFlows=true", "operator.istio.enabled=true", "operator.otel.enabled=true",
		"operator.metricsStore.maxSeries=5", "replicaCount=2", "resources.limits.memory=1Gi",
		"config.processors.batch.timeout=2s")
	assert.Equal(t, map[string]any{"timeout": "2s"}, p.Processors["batch"])
	assert.Contains(t, p.Processors, "memory_limiter", "the generated keys stay")
	after, _ := find(objs, "Deployment", release)
	assert.NotEqual(t, checksum(before), checksum(after))
}

func checksum(dep object) string {
	tmpl, _ := dep.Spec["template"].(map[string]any)
	meta, _ := tmpl["metadata"].(map[string]any)
	ann, _ := meta["annotations"].(map[string]any)
	s, _ := ann["checksum/config"].(string)
	return s
}

// TestRBAC checks that no example grants more than reads (never of Secrets), get and patch
// of its own client-certificate and token Secrets by name (certificate and token renewals), its own Lease,
// impersonating the reader by name, and PolicyReports when they are enabled.
func TestRBAC(t *testing.T) {
	helm, _ := tools(t)
	read := []string{"get", "list", "watch"}
	for _, name := range examples(t) {
		t.Run(name, func(t *testing.T) {
			out, err := template(helm, "-f", filepath.Join(examplesDir, name, "values.yaml"))
			require.NoError(t, err)
			clientTLS, token := tlsSecret, tokenSecret
			if name == "persistent-queue" {
				clientTLS, token = "kestrel-client-tls", "kestrel-onboarding" // its existingSecrets
			}
			var secrets []string
			for _, o := range parse(t, out) {
				if o.Kind != "ClusterRole" && o.Kind != "Role" {
					continue
				}
				for _, r := range o.Rules {
					assert.NotContains(t, r.APIGroups, "*")
					assert.NotContains(t, r.Resources, "*")
					assert.NotContains(t, r.Verbs, "*")
					if slices.Contains(r.Resources, "secrets") && o.name() == release+"-datadog-keys" {
						// examples/integrations: the Datadog keys' Secret, get by name only.
						assert.Equal(t, rule{APIGroups: []string{""}, Resources: []string{"secrets"}, ResourceNames: []string{"datadog-keys"},
							Verbs: []string{"get"}}, r, "the Datadog keys' Secret: get by name only")
						continue
					}
					if slices.Contains(r.Resources, "secrets") {
						assert.Equal(t, "Role", o.Kind, "Secrets only in the release namespace")
						assert.Equal(t, rule{APIGroups: []string{""}, Resources: []string{"secrets"}, ResourceNames: r.ResourceNames,
							Verbs: []string{"get", "patch"}}, r, "%s %s: get and patch by name only", o.Kind, o.name())
						secrets = append(secrets, r.ResourceNames...)
						continue
					}
					if isSubset(r.Verbs, read) {
						continue
					}
					switch {
					case slices.Equal(r.APIGroups, []string{"coordination.k8s.io"}) && slices.Equal(r.Resources, []string{"leases"}) &&
						(slices.Equal(r.Verbs, []string{"create"}) || (len(r.ResourceNames) == 1 && isSubset(r.Verbs, []string{"get", "update"}))):
					case slices.Equal(r.Resources, []string{"serviceaccounts"}) && slices.Equal(r.Verbs, []string{"impersonate"}) &&
						slices.Equal(r.ResourceNames, []string{"kestrel-ai-reader"}):
					case slices.Equal(r.APIGroups, []string{"wgpolicyk8s.io"}) && strings.Contains(readFile(t, filepath.Join(examplesDir, name, "values.yaml")), "policyReports: true"):
					case (name == "changes" || name == "integrations") && writeProfile(o, r):
					case name == "integrations" && o.name() == release+"-integrations-write": // TestIntegrations: exactly config/rbac's
					default:
						t.Errorf("%s %s grants %v on %v %v", o.Kind, o.name(), r.Verbs, r.APIGroups, r.Resources)
					}
				}
			}
			assert.ElementsMatch(t, []string{clientTLS, token}, secrets, "only its client certificate and its token, for renewals")
		})
	}
}

// writeProfile tells the rules of the opt-in write profile and self-restart (examples/changes)
// apart: they mirror config/rbac.
func writeProfile(o object, r rule) bool {
	switch o.name() {
	case release + "-kestrel-ai-changes": // the kinds the change identity may write
		return slices.Equal(r.Verbs, []string{"get", "create", "patch"}) && len(r.ResourceNames) == 0
	case release + "-changerequests":
		return slices.Equal(r.APIGroups, []string{"kestrel.ai"}) && slices.Equal(r.Resources, []string{"changerequests"}) ||
			slices.Equal(r.Resources, []string{"changerequests/status"}) && slices.Equal(r.Verbs, []string{"get", "update", "patch"}) ||
			slices.Equal(r.Resources, []string{"events"}) && slices.Equal(r.Verbs, []string{"create", "patch"})
	case release + "-impersonate-changes":
		return slices.Equal(r.Verbs, []string{"impersonate"}) && slices.Equal(r.ResourceNames, []string{"kestrel-ai-changes"})
	case release + "-restart":
		return slices.Equal(r.Resources, []string{"deployments"}) && slices.Equal(r.ResourceNames, []string{release}) &&
			slices.Equal(r.Verbs, []string{"get", "patch"})
	case "kestrel-ai-changerequest-approver":
		return slices.Equal(r.Resources, []string{"changerequests"})
	}
	return false
}

// TestCRDs: the chart ships config/crd unchanged (make chart-crds copies it): the CRDs in
// crds/, the admission policy in files/ (a template includes it).
func TestCRDs(t *testing.T) {
	home, err := filepath.Glob("../../config/crd/*.yaml")
	require.NoError(t, err)
	require.NotEmpty(t, home, "config/crd holds the CRDs")
	shipped, err := filepath.Glob(chartDir + "/crds/*.yaml")
	require.NoError(t, err)
	files, err := filepath.Glob(chartDir + "/files/*_admission.yaml")
	require.NoError(t, err)
	require.Len(t, append(shipped, files...), len(home), "make chart-crds")
	for _, f := range home {
		dir := "crds"
		if strings.HasSuffix(f, "_admission.yaml") {
			dir = "files"
		}
		assert.Equal(t, readFile(t, f), readFile(t, filepath.Join(chartDir, dir, filepath.Base(f))), "%s differs from the chart's copy: make chart-crds", f)
	}
	// The integrations' profiles, whose rules templates/integrations.yaml takes from files/.
	for _, f := range []string{"integrations-read.yaml", "integrations-write.yaml"} {
		assert.Equal(t, readFile(t, filepath.Join("../../config/rbac", f)), readFile(t, filepath.Join(chartDir, "files", f)),
			"config/rbac/%s differs from the chart's copy: make chart-crds", f)
	}
}

// TestIntegrations: examples/integrations grants the reader exactly the rules of
// config/rbac/integrations-read.yaml and the change identity exactly those of
// integrations-write.yaml, reads the Datadog keys from the Secret by reference, and carries
// the switches into kestrel_tools' configuration; everything-off grants none of it.
func TestIntegrations(t *testing.T) {
	helm, _ := tools(t)
	out, err := template(helm, "-f", filepath.Join(examplesDir, "integrations", "values.yaml"))
	require.NoError(t, err)
	objs := parse(t, out)
	for _, c := range []struct{ file, name, subject string }{
		{"integrations-read.yaml", release + "-integrations-read", "kestrel-ai-reader"},
		{"integrations-write.yaml", release + "-integrations-write", "kestrel-ai-changes"},
	} {
		home := parse(t, readFile(t, filepath.Join("../../config/rbac", c.file)))
		want, ok := find(home, "ClusterRole", "")
		require.True(t, ok, c.file)
		role, ok := find(objs, "ClusterRole", c.name)
		require.True(t, ok, c.name)
		assert.Equal(t, want.Rules, role.Rules, "%s: the rules of config/rbac/%s", c.name, c.file)
		binding, ok := find(objs, "ClusterRoleBinding", c.name)
		require.True(t, ok, c.name)
		assert.Equal(t, []any{map[string]any{"kind": "ServiceAccount", "name": c.subject, "namespace": namespace}}, binding.fields(t)["subjects"])
	}
	dd, ok := find(objs, "Role", release+"-datadog-keys")
	require.True(t, ok)
	assert.Equal(t, "datadog", dd.Metadata["namespace"])
	assert.Equal(t, []rule{{APIGroups: []string{""}, Resources: []string{"secrets"}, ResourceNames: []string{"datadog-keys"}, Verbs: []string{"get"}}}, dd.Rules)
	ddBinding, ok := find(objs, "RoleBinding", release+"-datadog-keys")
	require.True(t, ok)
	assert.Equal(t, []any{map[string]any{"kind": "ServiceAccount", "name": release, "namespace": namespace}}, ddBinding.fields(t)["subjects"])

	var cfg struct {
		Receivers struct {
			Tools struct {
				Integrations map[string]map[string]any `json:"integrations"`
				Changes      map[string]any            `json:"changes"`
			} `json:"kestrel_tools"`
		} `json:"receivers"`
	}
	require.NoError(t, yaml.Unmarshal([]byte(collectorConfig(t, objs)), &cfg))
	in := cfg.Receivers.Tools.Integrations
	for _, k := range []string{"argocd", "rollouts", "flux", "karpenter", "datadog"} {
		assert.Equal(t, true, in[k]["enabled"], k)
	}
	assert.Equal(t, "argocd", in["argocd"]["namespace"])
	assert.Equal(t, map[string]any{"namespace": "datadog", "name": "datadog-keys", "api_key": "api-key", "app_key": "application-key"}, in["datadog"]["secret"])
	assert.Equal(t, "datadoghq.eu", in["datadog"]["site"])
	assert.Contains(t, fmt.Sprint(cfg.Receivers.Tools.Changes["apply"]), "FLUX_RECONCILE", "auto_approve operations reach the config")

	off, err := template(helm, "-f", filepath.Join(examplesDir, "everything-off", "values.yaml"))
	require.NoError(t, err)
	assert.NotContains(t, off, "integrations-read")
	assert.NotContains(t, off, "integrations-write")
	assert.NotContains(t, off, "datadog-keys")
	require.NoError(t, yaml.Unmarshal([]byte(collectorConfig(t, parse(t, off))), &cfg))
	for k, v := range cfg.Receivers.Tools.Integrations {
		assert.Equal(t, map[string]any{"enabled": false}, v, k)
	}
}

func isSubset(a, of []string) bool {
	for _, s := range a {
		if !slices.Contains(of, s) {
			return false
		}
	}
	return true
}

// deployment is the pod template of a Deployment or DaemonSet.
type deployment struct {
	Spec struct {
		Template struct {
			Spec struct {
				SecurityContext struct {
					RunAsNonRoot   bool `json:"runAsNonRoot"`
					SeccompProfile struct {
						Type string `json:"type"`
					} `json:"seccompProfile"`
				} `json:"securityContext"`
				Containers []struct {
					SecurityContext struct {
						AllowPrivilegeEscalation *bool `json:"allowPrivilegeEscalation"`
						ReadOnlyRootFilesystem   bool  `json:"readOnlyRootFilesystem"`
						RunAsNonRoot             bool  `json:"runAsNonRoot"`
						Capabilities             struct {
							Drop []string `json:"drop"`
						} `json:"capabilities"`
						SeccompProfile struct {
							Type string `json:"type"`
						} `json:"seccompProfile"`
					} `json:"securityContext"`
					Resources struct {
						Requests map[string]string `json:"requests"`
						Limits   map[string]string `json:"limits"`
					} `json:"resources"`
					LivenessProbe  map[string]any `json:"livenessProbe"`
					ReadinessProbe map[string]any `json:"readinessProbe"`
				} `json:"containers"`
			} `json:"spec"`
		} `json:"template"`
	} `json:"spec"`
}

// TestHardenedPod checks the pods of every example.
func TestHardenedPod(t *testing.T) {
	helm, _ := tools(t)
	for _, name := range examples(t) {
		out, err := template(helm, "-f", filepath.Join(examplesDir, name, "values.yaml"))
		require.NoError(t, err)
		objs := parse(t, out)
		o, ok := find(objs, "Deployment", release)
		require.True(t, ok)
		pods := []object{o}
		if ds, ok := find(objs, "DaemonSet", release+"-node-agent"); ok {
			pods = append(pods, ds)
		}
		if ra, ok := find(objs, "Deployment", release+"-relay-agent"); ok {
			pods = append(pods, ra)
		}
		for _, o := range pods {
			checkHardened(t, name+" "+o.Kind, o)
		}
	}
}

func checkHardened(t *testing.T, name string, o object) {
	t.Helper()
	var d deployment
	require.NoError(t, yaml.Unmarshal([]byte(o.raw), &d))
	pod := d.Spec.Template.Spec
	assert.True(t, pod.SecurityContext.RunAsNonRoot, name)
	assert.Equal(t, "RuntimeDefault", pod.SecurityContext.SeccompProfile.Type, name)
	require.Len(t, pod.Containers, 1)
	c := pod.Containers[0]
	assert.Equal(t, new(false), c.SecurityContext.AllowPrivilegeEscalation, name)
	assert.True(t, c.SecurityContext.ReadOnlyRootFilesystem, name)
	assert.True(t, c.SecurityContext.RunAsNonRoot, name)
	assert.Equal(t, []string{"ALL"}, c.SecurityContext.Capabilities.Drop, name)
	assert.Equal(t, "RuntimeDefault", c.SecurityContext.SeccompProfile.Type, name)
	assert.NotEmpty(t, c.Resources.Limits["memory"], name)
	switch {
	case o.Kind == "DaemonSet" || strings.HasSuffix(o.name(), "-relay-agent"):
		assert.Equal(t, map[string]string{"cpu": "50m", "memory": "64Mi"}, c.Resources.Requests, name)
	case name != "ha Deployment":
		assert.Equal(t, map[string]string{"cpu": "100m", "memory": "128Mi"}, c.Resources.Requests, name)
	}
	assert.Contains(t, c.LivenessProbe, "httpGet", name)
	assert.Contains(t, c.ReadinessProbe, "httpGet", name)
}

// TestSchemaRejections: typos, wrong types and refused keys fail with a message naming them.
func TestSchemaRejections(t *testing.T) {
	helm, _ := tools(t)
	base := filepath.Join(examplesDir, "cilium-only", "values.yaml")
	for _, tc := range []struct {
		set  []string
		want string
	}{
		{[]string{"replicaCont=2"}, "replicaCont"},
		{[]string{"operator.cilium.disableFlow=true"}, "disableFlow"},
		{[]string{"operator.otel.enabled=yes"}, "/operator/otel/enabled"},
		{[]string{"operator.otel.receiverPort=70000"}, "/operator/otel/receiverPort"},
		{[]string{"operator.metricsStore.retention=30 minutes"}, "/operator/metricsStore/retention"},
		{[]string{"operator.metricsStore.ringSize=0"}, "/operator/metricsStore/ringSize"},
		{[]string{"operator.cilium.mode=ebpf"}, "/operator/cilium/mode"},
		{[]string{"resources.limits.memory=lots"}, "/resources/limits/memory"},
		{[]string{"replicaCount=0"}, "/replicaCount"},
		{[]string{"image.pullPolicy=Sometimes"}, "/image/pullPolicy"},
		{[]string{"operator.safeApply.enabled=true"}, "operator.safeApply.enabled: this chart never grants"},
		{[]string{"networkPolicy.create=true"}, "networkPolicy.create: not supported"},
		{[]string{"auth.token="}, "auth.token (the onboarding JWT) or auth.existingSecret is required"},
		{[]string{"certificates.client.cert=placeholder"}, "certificates.client.cert must be the PEM client certificate"},
		{[]string{"persistence.enabled=true", "replicaCount=2", "operator.cilium.disableFlows=true"}, "persistence.enabled needs replicaCount: 1"},
		{[]string{"relayAgent.gogc=5"}, "/relayAgent/gogc"},
		{[]string{"relayAgent.replicas=2"}, "replicas"},
		{[]string{"operator.restart.mode=now"}, "/operator/restart/mode"},
		{[]string{"operator.cilium.mode=node", "nodeAgent.hubbleSocket=hubble.sock"}, "/nodeAgent/hubbleSocket"},
		{[]string{"operator.cilium.mode=node", "nodeAgent.socketGrp=0"}, "socketGrp"},
		{[]string{"operator.cilium.mode=node", "nodeAgent.gogc=5"}, "/nodeAgent/gogc"},
		{[]string{"operator.cilium.mode=node", "nodeAgent.gomaxprocs=0"}, "/nodeAgent/gomaxprocs"},
		{[]string{"operator.changes.apply.autoApprove[0].kind=NetworkPolicy"}, "/operator/changes/apply/autoApprove/0"},
		{[]string{"operator.changes.apply.autoApprove[0].namespaces[0]=shop"}, "/operator/changes/apply/autoApprove/0"},
		{[]string{"operator.flux.enable=true"}, "enable"},
		{[]string{"operator.datadog.apiKey=0123abcd"}, "operator.datadog.apiKey/appKey: this chart never puts the Datadog keys"},
		{[]string{"operator.datadog.enabled=true", "operator.datadog.secretName="}, "operator.datadog.secretName: the name of the Secret"},
		{[]string{"operator.datadog.endpoint=http://proxy:8080"}, "/operator/datadog/endpoint"},
		{[]string{"operator.datadog.secretName=Datadog_Keys"}, "/operator/datadog/secretName"},
		{[]string{"operator.datadog.monitorPollInterval=60"}, "/operator/datadog/monitorPollInterval"},
		{[]string{"operator.argocd.namespace=Argo CD"}, "/operator/argocd/namespace"},
	} {
		args := []string{"-f", base}
		for _, s := range tc.set {
			args = append(args, "--set", s)
		}
		_, err := template(helm, args...)
		if assert.Error(t, err, tc.set) {
			assert.Contains(t, err.Error(), tc.want, tc.set)
		}
	}
}
