package k8sriskreceiver

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/receiver"
	"go.opentelemetry.io/collector/receiver/receivertest"
	"go.uber.org/zap/zaptest"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/yaml"

	"github.com/kestrelai/otelcol-kestrel/internal/kubeenv"
	kschema "github.com/kestrelai/otelcol-kestrel/internal/schema"
	"github.com/kestrelai/otelcol-kestrel/internal/testutil"
	"github.com/kestrelai/otelcol-kestrel/receiver/k8sriskreceiver/internal/metadata"
)

// testMain is called by the generated TestMain (see metadata.yaml): the package's tests
// share one kube-apiserver, stopped after them.
func testMain(m *testing.M) { kubeenv.Main(m) }

const (
	waitFor = 60 * time.Second
	tick    = 20 * time.Millisecond
)

// testConfig assesses only the given namespaces, fast.
func testConfig(include ...string) *Config {
	cfg := createDefaultConfig().(*Config)
	cfg.Namespaces = NamespacesConfig{Include: include}
	cfg.Interval = time.Hour
	cfg.Debounce = 100 * time.Millisecond
	cfg.MaxObjectsPerSecond = 100_000
	cfg.AttackChains.Interval = time.Second
	cfg.PolicyReports.Interval = 0
	return cfg
}

// isolatedConfig returns the admin config with its own user agent, so that the test gets
// informers of its own in k8scache.
func isolatedConfig(t *testing.T, env *kubeenv.Env) *rest.Config {
	cfg := env.RestConfig()
	cfg.UserAgent = "k8srisk-test/" + t.Name()
	return cfg
}

// startReceiver creates and starts the receiver with cfg against rc; it is shut down when
// the test ends.
func startReceiver(tb testing.TB, cfg *Config, rc *rest.Config, next consumer.Logs) {
	tb.Helper()
	startReceiverWith(tb, cfg, rc, next, receivertest.NewNopSettings(metadata.Type))
}

func startReceiverWith(tb testing.TB, cfg *Config, rc *rest.Config, next consumer.Logs, set receiver.Settings) *riskReceiver {
	tb.Helper()
	return startReceiverOn(tb, cfg, rc, next, set, &testutil.StatusHost{})
}

func startReceiverOn(tb testing.TB, cfg *Config, rc *rest.Config, next consumer.Logs, set receiver.Settings, host *testutil.StatusHost) *riskReceiver {
	tb.Helper()
	require.NoError(tb, cfg.Validate())
	set.Logger = zaptest.NewLogger(tb).Named(tb.Name())
	r, err := newReceiver(cfg, set, next)
	require.NoError(tb, err)
	r.restConfig = func() (*rest.Config, error) { return rc, nil }
	r.tick = tick
	require.NoError(tb, r.Start(context.Background(), host))
	tb.Cleanup(func() { require.NoError(tb, r.Shutdown(context.Background())) })
	return r
}

func adminClient(tb testing.TB, env *kubeenv.Env) *kubernetes.Clientset {
	tb.Helper()
	cs, err := kubernetes.NewForConfig(env.RestConfig())
	require.NoError(tb, err)
	return cs
}

func dynamicClient(tb testing.TB, env *kubeenv.Env) dynamic.Interface {
	tb.Helper()
	dyn, err := dynamic.NewForConfig(env.RestConfig())
	require.NoError(tb, err)
	return dyn
}

var crdResource = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}

// installCRDs installs the PolicyReport CRDs of testdata/crds and waits until they are served.
func installCRDs(tb testing.TB, env *kubeenv.Env) {
	tb.Helper()
	dyn := dynamicClient(tb, env)
	files, err := filepath.Glob("testdata/crds/*.yaml")
	require.NoError(tb, err)
	require.NotEmpty(tb, files)
	for _, f := range files {
		raw, err := os.ReadFile(f)
		require.NoError(tb, err)
		obj := &unstructured.Unstructured{}
		require.NoError(tb, yaml.Unmarshal(raw, &obj.Object))
		_, err = dyn.Resource(crdResource).Apply(context.Background(), obj.GetName(), obj, metav1.ApplyOptions{FieldManager: "test", Force: true})
		require.NoError(tb, err)
		require.Eventually(tb, func() bool {
			got, err := dyn.Resource(crdResource).Get(context.Background(), obj.GetName(), metav1.GetOptions{})
			if err != nil {
				return false
			}
			conds, _, _ := unstructured.NestedSlice(got.Object, "status", "conditions")
			for _, c := range conds {
				m, _ := c.(map[string]any)
				if m["type"] == "Established" && m["status"] == "True" {
					return true
				}
			}
			return false
		}, waitFor, tick, "CRD %s not established", obj.GetName())
	}
}

// rec is a finding record, flattened for assertions.
type rec struct {
	event, fp, check, result, status, resolution, message, assessment, exemption string
	object                                                                       kschema.RiskObject
	attrs                                                                        map[string]any
}

// obj names the finding's object as Kind/namespace/name (Kind//name when cluster-scoped).
func (r rec) obj() string { return r.object.Kind + "/" + r.object.Namespace + "/" + r.object.Name }

func (r rec) String() string {
	return fmt.Sprintf("%s %s %s %s %s", r.status, r.result, r.check, r.obj(), r.message)
}

func records(sink *consumertest.LogsSink) []rec {
	var out []rec
	for lr := range testutil.LogRecords(sink.AllLogs()...) {
		a := lr.Attributes()
		str := func(k string) string {
			v, _ := a.Get(k)
			return v.Str()
		}
		out = append(out, rec{
			event: lr.EventName(), fp: str(kschema.AttrRiskFingerprint), check: str(kschema.AttrSecurityRuleUUID),
			result: str(kschema.AttrRiskResult), status: str(kschema.AttrRiskStatus), resolution: str(kschema.AttrRiskResolution),
			message: lr.Body().AsString(), assessment: str(kschema.AttrRiskAssessmentID), exemption: str(kschema.AttrRiskExemptionReason),
			object: kschema.RiskObject{
				APIVersion: str(kschema.AttrK8sObjectAPIVersion), Kind: str(kschema.AttrK8sObjectKind),
				Namespace: str(kschema.AttrK8sNamespaceName), Name: str(kschema.AttrK8sObjectName), UID: str(kschema.AttrK8sObjectUID),
			},
			attrs: a.AsRaw(),
		})
	}
	return out
}

// state replays the finding records: the findings that hold, by fingerprint.
func state(recs []rec) map[string]rec {
	out := map[string]rec{}
	for _, r := range recs {
		if r.event != kschema.EventRiskFinding {
			continue
		}
		if r.status == kschema.RiskStatusResolved {
			delete(out, r.fp)
			continue
		}
		out[r.fp] = r
	}
	return out
}

func assessmentsDone(recs []rec) int {
	n := 0
	for _, r := range recs {
		if r.event == kschema.EventRiskAssessment {
			n++
		}
	}
	return n
}

// waitAssessments waits until n full assessments have completed and returns the records.
func waitAssessments(t *testing.T, sink *consumertest.LogsSink, n int) []rec {
	t.Helper()
	var recs []rec
	require.Eventually(t, func() bool {
		recs = records(sink)
		return assessmentsDone(recs) >= n
	}, waitFor, tick, "no full assessment completed")
	return recs
}

// byObject lists the checks that hold per object ("Kind/ns/name": sorted "check=result").
func byObject(st map[string]rec, keep func(rec) bool) map[string][]string {
	out := map[string][]string{}
	for _, r := range st {
		if keep != nil && !keep(r) {
			continue
		}
		out[r.obj()] = append(out[r.obj()], r.check+"="+r.result)
	}
	for _, v := range out {
		sort.Strings(v)
	}
	return out
}

func describe(recs []rec) string {
	lines := make([]string, 0, len(recs))
	for _, r := range recs {
		lines = append(lines, "  "+r.String())
	}
	slices.Sort(lines)
	if len(lines) > 80 {
		lines = append(lines[:80], fmt.Sprintf("  ... %d more", len(lines)-80))
	}
	return strings.Join(lines, "\n")
}
