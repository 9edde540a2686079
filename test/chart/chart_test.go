// Package chart tests charts/kestrel-operator with the pinned helm CLI: lint, the rendered
// examples against golden files, the schema's rejections, every rendered collector
// configuration through `otelcol-kestrel validate`, the RBAC it grants, and a real install
// into the kube-apiserver of internal/kubeenv whose ServiceAccount then runs the rendered
// configuration against a devcloud. `make chart-test` runs it (it installs helm and builds
// the binary); without CHART_TEST_HELM it skips.
package chart

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"sigs.k8s.io/yaml"

	"github.com/kestrelai/otelcol-kestrel/internal/kubeenv"
)

func TestMain(m *testing.M) { kubeenv.Main(m) }

const (
	chartDir    = "../../charts/kestrel-operator"
	examplesDir = chartDir + "/examples"
	release     = "kestrel-operator"
	namespace   = "kestrel-ai"
)

// tools returns the helm and otelcol-kestrel binaries make chart-test provides.
func tools(t *testing.T) (helm, collector string) {
	t.Helper()
	helm = os.Getenv("CHART_TEST_HELM")
	if helm == "" {
		t.Skip("CHART_TEST_HELM is not set: run make chart-test")
	}
	collector, err := filepath.Abs("../../bin/otelcol-kestrel")
	require.NoError(t, err)
	_, err = os.Stat(collector)
	require.NoError(t, err, "make chart-test builds bin/otelcol-kestrel")
	return helm, collector
}

// run runs a program and returns its stdout, or an error with its stderr.
func run(name string, args ...string) (string, error) { return runEnv(nil, name, args...) }

// runEnv is run with env added to the environment.
func runEnv(env []string, name string, args ...string) (string, error) {
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.Env = append(os.Environ(), env...)
	if err := cmd.Run(); err != nil {
		return stdout.String(), errors.New(err.Error() + ": " + stderr.String())
	}
	return stdout.String(), nil
}

func template(helm string, args ...string) (string, error) {
	return run(helm, append([]string{"template", release, chartDir, "--namespace", namespace}, args...)...)
}

// examples lists the values examples: examples/<name>/values.yaml.
func examples(t *testing.T) []string {
	t.Helper()
	entries, err := os.ReadDir(examplesDir)
	require.NoError(t, err)
	var names []string
	for _, e := range entries {
		if e.IsDir() {
			names = append(names, e.Name())
		}
	}
	require.NotEmpty(t, names)
	return names
}

// object is the part of a rendered object these tests read.
type object struct {
	APIVersion string         `json:"apiVersion"`
	Kind       string         `json:"kind"`
	Metadata   map[string]any `json:"metadata"`
	Data       map[string]any `json:"data"`
	Rules      []rule         `json:"rules"`
	Spec       map[string]any `json:"spec"`
	raw        string
}

type rule struct {
	APIGroups     []string `json:"apiGroups"`
	Resources     []string `json:"resources"`
	ResourceNames []string `json:"resourceNames"`
	Verbs         []string `json:"verbs"`
}

func (o object) name() string { s, _ := o.Metadata["name"].(string); return s }

// raw2 is the whole object as a map, for the fields object does not name.
func (o object) fields(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	require.NoError(t, yaml.Unmarshal([]byte(o.raw), &m))
	return m
}

func parse(t *testing.T, manifest string) []object {
	t.Helper()
	var out []object
	for doc := range strings.SplitSeq(manifest, "\n---") {
		if strings.TrimSpace(strings.TrimPrefix(doc, "---")) == "" {
			continue
		}
		var o object
		require.NoError(t, yaml.Unmarshal([]byte(doc), &o), doc)
		if o.Kind == "" {
			continue
		}
		o.raw = doc
		out = append(out, o)
	}
	return out
}

func find(objs []object, kind, name string) (object, bool) {
	for _, o := range objs {
		if o.Kind == kind && (name == "" || o.name() == name) {
			return o, true
		}
	}
	return object{}, false
}

// collectorConfig is the rendered collector configuration of a manifest.
func collectorConfig(t *testing.T, objs []object) string {
	t.Helper()
	cm, ok := find(objs, "ConfigMap", release)
	require.True(t, ok, "no ConfigMap %s", release)
	cfg, _ := cm.Data["config.yaml"].(string)
	require.NotEmpty(t, cfg)
	return cfg
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	return string(b)
}
