package k8sriskreceiver

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"

	"github.com/kestrelai/otelcol-kestrel/internal/k8scache"
	"github.com/kestrelai/otelcol-kestrel/internal/kubeenv"
	kschema "github.com/kestrelai/otelcol-kestrel/internal/schema"
	"github.com/kestrelai/otelcol-kestrel/internal/testutil"
	"github.com/kestrelai/otelcol-kestrel/receiver/k8sriskreceiver/internal/metadatatest"
)

// Every full assessment emits each finding that holds again (open, with its id) and closes
// with a record whose counts per pillar, severity and result are those of the self-metric.
func TestFullAssessmentsReaffirmFindingsAndCount(t *testing.T) {
	env := kubeenv.Shared(t)
	cs := adminClient(t, env)
	ns := env.Namespace(t)
	setUpNamespace(t, cs, ns, namespaceBasics{})
	createDeployment(t, cs, goodDeployment(ns, "good", nil))
	createDeployment(t, cs, goodDeployment(ns, "privileged", func(d *appsv1.Deployment) {
		container(d).SecurityContext.Privileged = ptr.To(true)
		container(d).SecurityContext.AllowPrivilegeEscalation = nil
	}))

	tt := componenttest.NewTelemetry()
	t.Cleanup(func() { require.NoError(t, tt.Shutdown(context.Background())) })
	cfg := testConfig(ns)
	require.NoError(t, cfg.Validate())
	cfg.Interval = time.Second // below what Validate allows, to see two assessments
	sink := &consumertest.LogsSink{}
	r, err := newReceiver(cfg, metadatatest.NewSettings(tt), sink)
	require.NoError(t, err)
	rc := isolatedConfig(t, env)
	r.restConfig = func() (*rest.Config, error) { return rc, nil }
	r.tick = tick
	before := k8scache.Running()
	require.NoError(t, r.Start(context.Background(), &testutil.StatusHost{}))
	recs := waitAssessments(t, sink, 2)
	require.NoError(t, r.Shutdown(context.Background()))
	assert.Equal(t, before, k8scache.Running(), "every informer is released at shutdown")

	var ids []string
	var last rec
	for _, x := range recs {
		if x.event == kschema.EventRiskAssessment {
			ids = append(ids, x.assessment)
			last = x
		}
	}
	first := map[string]bool{}
	second := map[string]bool{}
	for _, x := range recs {
		switch {
		case x.event != kschema.EventRiskFinding:
		case x.assessment == ids[0]:
			assert.Equal(t, kschema.RiskStatusNew, x.status)
			first[x.fp] = true
		case x.assessment == ids[1]:
			assert.Equal(t, kschema.RiskStatusOpen, x.status, "unchanged since the last assessment: %s", x)
			second[x.fp] = true
		}
	}
	require.NotEmpty(t, first)
	assert.Equal(t, first, second, "the second assessment re-affirms every finding")

	// The assessment's counts are the self-metric's.
	counts := map[[3]string]int64{}
	for _, c := range last.attrs[kschema.AttrRiskAssessmentCounts].([]any) {
		m := c.(map[string]any)
		counts[[3]string{m["pillar"].(string), m["severity"].(string), m["result"].(string)}] = m["count"].(int64)
	}
	assert.Equal(t, int64(1), counts[[3]string{"security", "critical", "fail"}], "the privileged container")
	assert.Positive(t, counts[[3]string{"security", "critical", "pass"}], "and the good one")
	m, err := tt.GetMetric("otelcol.k8s_risk.findings")
	require.NoError(t, err)
	gauge := map[[3]string]int64{}
	for _, dp := range m.Data.(metricdata.Gauge[int64]).DataPoints {
		get := func(k string) string { v, _ := dp.Attributes.Value(attribute.Key(k)); return v.AsString() }
		if dp.Value > 0 {
			gauge[[3]string{get("pillar"), get("severity"), get("result")}] = dp.Value
		}
	}
	assert.Equal(t, counts, gauge)
	assert.GreaterOrEqual(t, testutil.MetricSum(tt, "otelcol.k8s_risk.assessments"), int64(2))
	assert.Positive(t, testutil.MetricSum(tt, "otelcol.k8s_risk.evaluations"))
}

// Namespace filters: nothing in an excluded namespace is assessed, neither its objects nor
// the namespace itself, while the same objects elsewhere are.
func TestExcludedNamespacesAreNotAssessed(t *testing.T) {
	env := kubeenv.Shared(t)
	cs := adminClient(t, env)
	in, out := env.Namespace(t), env.Namespace(t)
	for _, ns := range []string{in, out} {
		setUpNamespace(t, cs, ns, namespaceBasics{})
		createDeployment(t, cs, goodDeployment(ns, "privileged", func(d *appsv1.Deployment) {
			container(d).SecurityContext.Privileged = ptr.To(true)
			container(d).SecurityContext.AllowPrivilegeEscalation = nil
		}))
	}
	cfg := testConfig()
	cfg.Namespaces = NamespacesConfig{Exclude: []string{out}}
	sink := &consumertest.LogsSink{}
	startReceiver(t, cfg, isolatedConfig(t, env), sink)
	st := state(waitAssessments(t, sink, 1))
	findOne(t, st, "Deployment/"+in+"/privileged", "security.privileged-container")
	for _, r := range st {
		assert.NotEqual(t, out, r.object.Namespace, r.String())
		assert.False(t, r.object.Kind == "Namespace" && r.object.Name == out, r.String())
	}
}
