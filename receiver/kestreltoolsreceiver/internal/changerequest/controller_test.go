package changerequest

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.uber.org/zap/zaptest"
	"google.golang.org/protobuf/proto"
	authenticationv1 "k8s.io/api/authentication/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	cloudv1 "github.com/kestrelai/otelcol-kestrel/api/cloud/v1"
	"github.com/kestrelai/otelcol-kestrel/api/kestrel/v1alpha1"
	"github.com/kestrelai/otelcol-kestrel/internal/cloudconn"
	"github.com/kestrelai/otelcol-kestrel/internal/kubeenv"
	"github.com/kestrelai/otelcol-kestrel/internal/schema"
	"github.com/kestrelai/otelcol-kestrel/internal/testutil/pipelinetest"
	"github.com/kestrelai/otelcol-kestrel/internal/testutil/toolstest"
	"github.com/kestrelai/otelcol-kestrel/receiver/kestreltoolsreceiver/internal/audit"
	"github.com/kestrelai/otelcol-kestrel/receiver/kestreltoolsreceiver/internal/manifest"
	"github.com/kestrelai/otelcol-kestrel/receiver/kestreltoolsreceiver/internal/ssa"
)

func TestMain(m *testing.M) { kubeenv.Main(m) }

// A ChangeRequest left in Applying by a process that stopped: taken over once its claim is
// older than an apply can take, never while it is fresh, and never without a decision. The
// outcome reaches the cloud through the real connection.
func TestClaimTakeover(t *testing.T) {
	env := kubeenv.Shared(t)
	ns := env.Namespace(t)
	toolstest.InstallCRDs(t, env)
	rc := env.RestConfig()
	cs, err := kubernetes.NewForConfig(rc)
	require.NoError(t, err)
	review, err := cs.AuthenticationV1().SelfSubjectReviews().Create(context.Background(), &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	require.NoError(t, err)
	self := review.Status.UserInfo.Username
	dyn, err := dynamic.NewForConfig(rc)
	require.NoError(t, err)
	crs := dyn.Resource(v1alpha1.GroupVersionResource).Namespace(ns)
	janeRC := rest.CopyConfig(rc)
	janeRC.Impersonate = rest.ImpersonationConfig{UserName: "jane", Groups: []string{"system:masters"}}
	jane, err := dynamic.NewForConfig(janeRC)
	require.NoError(t, err)
	ctx := context.Background()

	// left creates a ChangeRequest as a stopped process would have left it (claimedAt zero:
	// not claimed, as a running process leaves it until the decision).
	left := func(name string, decided bool, claimedAt time.Time) {
		cr := &v1alpha1.ChangeRequest{
			TypeMeta:   metav1.TypeMeta{APIVersion: "kestrel.ai/v1alpha1", Kind: v1alpha1.Kind},
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
			Spec: v1alpha1.ChangeRequestSpec{Origin: v1alpha1.OriginApply, RequestID: name, Target: "NetworkPolicy " + ns + "/" + name,
				RequestedBy: self, ExpiresAt: metav1.NewTime(time.Now().Add(time.Hour)),
				Manifests: []v1alpha1.Manifest{{ID: "m", Object: "networking.k8s.io/v1 NetworkPolicy " + ns + "/" + name,
					YAML: "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: " + name + ", namespace: " + ns + "}\nspec: {podSelector: {}}\n"}}},
		}
		u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(cr)
		require.NoError(t, err)
		_, err = crs.Create(ctx, &unstructured.Unstructured{Object: u}, metav1.CreateOptions{})
		require.NoError(t, err)
		if decided {
			_, err = jane.Resource(v1alpha1.GroupVersionResource).Namespace(ns).Patch(ctx, name, "application/merge-patch+json",
				[]byte(`{"spec":{"decision":"Approved","decidedBy":"jane"}}`), metav1.PatchOptions{})
			require.NoError(t, err)
		}
		if claimedAt.IsZero() {
			return
		}
		got, err := crs.Get(ctx, name, metav1.GetOptions{})
		require.NoError(t, err)
		at := metav1.NewTime(claimedAt)
		got.Object["status"] = map[string]any{"state": "Applying", "claimedAt": at.UTC().Format(time.RFC3339)}
		_, err = crs.UpdateStatus(ctx, got, metav1.UpdateOptions{})
		require.NoError(t, err)
	}
	left("stale", true, time.Now().Add(-time.Hour))
	left("fresh", true, time.Now())
	left("undecided", false, time.Now().Add(-time.Hour))
	left("decided", true, time.Time{})

	p := pipelinetest.Start(t)
	conn := p.Host.Extensions[component.MustNewID("kestrel_command")].(cloudconn.Provider).Connection()
	applier, err := ssa.New(rc)
	require.NoError(t, err)
	nop := func(context.Context, string, string) {}
	logs := new(consumertest.LogsSink)
	trail := audit.New(zaptest.NewLogger(t), nop, nop, logs)
	c, err := New(Config{Enabled: true, Namespace: ns, Expiry: time.Hour, DryRunTimeout: 10 * time.Second, MaxDryRunTimeout: 10 * time.Second,
		ApplyTimeout: 5 * time.Second, Limits: manifest.DefaultLimits}, rc, applier, conn, trail, zaptest.NewLogger(t))
	require.NoError(t, err)
	c.Start(ctx)
	t.Cleanup(c.Stop)

	state := func(name string) v1alpha1.State {
		u, err := crs.Get(ctx, name, metav1.GetOptions{})
		require.NoError(t, err)
		cr, err := decode(u)
		require.NoError(t, err)
		return cr.Status.State
	}
	exists := func(name string) bool {
		_, err := cs.NetworkingV1().NetworkPolicies(ns).Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return false
		}
		require.NoError(t, err)
		return true
	}
	require.Eventually(t, func() bool { return state("stale") == v1alpha1.StateApplied }, 30*time.Second, 50*time.Millisecond)
	assert.True(t, exists("stale"))
	final := p.Cloud.WaitPayload(t, "the final answer", func(m proto.Message) bool {
		r, ok := m.(*cloudv1.YamlApplyResponse)
		return ok && r.GetRequestId() == "stale"
	}).(*cloudv1.YamlApplyResponse)
	assert.False(t, final.GetPending())
	assert.True(t, final.GetResults()[0].GetSuccess(), final.GetGlobalErrorMessage())

	require.Eventually(t, func() bool { return state("undecided") == v1alpha1.StateFailed }, 30*time.Second, 50*time.Millisecond)
	assert.False(t, exists("undecided"), "a claim without a decision applies nothing")

	require.Eventually(t, func() bool { return state("decided") == v1alpha1.StateApplied }, 30*time.Second, 50*time.Millisecond)
	assert.True(t, exists("decided"))

	time.Sleep(time.Second)
	assert.Equal(t, v1alpha1.StateApplying, state("fresh"), "a fresh claim belongs to the process that made it")
	assert.False(t, exists("fresh"))

	// The decision this process saw is audited with the decider as the identity.
	c.Stop()
	trail.Close()
	var decisions []string
	for _, l := range logs.AllLogs() {
		for i := range l.ResourceLogs().Len() {
			sl := l.ResourceLogs().At(i).ScopeLogs().At(0)
			for j := range sl.LogRecords().Len() {
				a := sl.LogRecords().At(j).Attributes()
				if tool, _ := a.Get(schema.AttrToolName); tool.Str() == DecisionTool {
					id, _ := a.Get(schema.AttrToolIdentity)
					outcome, _ := a.Get(schema.AttrToolOutcome)
					decisions = append(decisions, id.Str()+" "+outcome.Str())
				}
			}
		}
	}
	assert.Equal(t, []string{"jane ok"}, decisions)
}
