package k8sinventoryreceiver

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componentstatus"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/metric/metricdata/metricdatatest"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kestrelai/otelcol-kestrel/internal/kubeenv"
	"github.com/kestrelai/otelcol-kestrel/internal/schema"
	"github.com/kestrelai/otelcol-kestrel/internal/testutil"
	"github.com/kestrelai/otelcol-kestrel/receiver/k8sinventoryreceiver/internal/metadatatest"
)

func TestForbiddenKindIsLeftOut(t *testing.T) {
	env := kubeenv.Shared(t)
	cs := adminClient(t, env)
	ns := env.Namespace(t)
	ctx := t.Context()
	_, err := cs.CoreV1().Services(ns).Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "hidden"},
		Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 80}}},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	_, err = cs.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "visible"},
		Spec:       podTemplate("visible").Spec,
	}, metav1.CreateOptions{})
	require.NoError(t, err)

	// A service account that may read everything the receiver watches except Services.
	name := "k8s-inventory-" + ns
	_, err = cs.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "inventory"}}, metav1.CreateOptions{})
	require.NoError(t, err)
	read := []string{"get", "list", "watch"}
	_, err = cs.RbacV1().ClusterRoles().Create(ctx, &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{""}, Resources: []string{"namespaces", "nodes", "pods", "events"}, Verbs: read},
			{APIGroups: []string{"apps"}, Resources: []string{"deployments", "statefulsets", "daemonsets", "replicasets"}, Verbs: read},
			{APIGroups: []string{"batch"}, Resources: []string{"jobs", "cronjobs"}, Verbs: read},
			{APIGroups: []string{"networking.k8s.io"}, Resources: []string{"networkpolicies"}, Verbs: read},
			{APIGroups: []string{"apiextensions.k8s.io"}, Resources: []string{"customresourcedefinitions"}, Verbs: read},
		},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	_, err = cs.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: name},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: "inventory", Namespace: ns}},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx := context.Background()
		assert.NoError(t, cs.RbacV1().ClusterRoleBindings().Delete(ctx, name, metav1.DeleteOptions{}))
		assert.NoError(t, cs.RbacV1().ClusterRoles().Delete(ctx, name, metav1.DeleteOptions{}))
	})
	tok, err := cs.CoreV1().ServiceAccounts(ns).CreateToken(ctx, "inventory", &authenticationv1.TokenRequest{}, metav1.CreateOptions{})
	require.NoError(t, err)

	rc, _ := isolatedConfig(t, env)
	rc.BearerToken = tok.Status.Token
	cfg := createDefaultConfig().(*Config)
	cfg.Namespaces.Include = []string{ns}
	sink := &consumertest.LogsSink{}
	host := &testutil.StatusHost{}
	require.NoError(t, testReceiver(t, cfg, rc, sink).Start(ctx, host))

	waitRecord(t, sink, "snapshot_complete", is(schema.EventInventorySnapshotComplete, ""))
	assert.NotEmpty(t, find(records(sink), is(schema.EventInventoryPod, schema.ActionCreate, attr(schema.AttrK8sPodName, "visible"))))
	assert.Empty(t, find(records(sink), is(schema.EventInventoryService, "")))
	host.WaitStatus(t, componentstatus.StatusRecoverableError, "services@"+ns)
	assert.Contains(t, host.Last().Err().Error(), "forbidden")

	// The rest keeps working.
	_, err = cs.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "later"}, Spec: podTemplate("later").Spec}, metav1.CreateOptions{})
	require.NoError(t, err)
	waitRecord(t, sink, "pod created after the snapshot", is(schema.EventInventoryPod, schema.ActionCreate, attr(schema.AttrK8sPodName, "later")))
}

// TestAPIServerOutage stops a kube-apiserver of its own for a moment (an outage of the
// shared one would outlast the test in the controller-manager's backoff).
func TestAPIServerOutage(t *testing.T) {
	env := kubeenv.New(t, kubeenv.Options{NoControllerManager: true})
	ctx := t.Context()
	cs := adminClient(t, env)
	ns := "outage"
	_, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
	require.NoError(t, err)
	_, err = cs.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "before"}, Spec: podTemplate("before").Spec}, metav1.CreateOptions{})
	require.NoError(t, err)

	rc, _ := isolatedConfig(t, env)
	cfg := createDefaultConfig().(*Config)
	cfg.Namespaces.Include = []string{ns}
	sink := &consumertest.LogsSink{}
	host := &testutil.StatusHost{}
	require.NoError(t, testReceiver(t, cfg, rc, sink).Start(ctx, host))
	waitRecord(t, sink, "snapshot_complete", is(schema.EventInventorySnapshotComplete, ""))
	host.WaitStatus(t, componentstatus.StatusOK)
	before := len(records(sink))

	env.StopAPIServer()
	host.WaitStatus(t, componentstatus.StatusRecoverableError, "connection refused")
	require.NoError(t, env.StartAPIServer(ctx))

	_, err = cs.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "after"}, Spec: podTemplate("after").Spec}, metav1.CreateOptions{})
	require.NoError(t, err)
	waitRecord(t, sink, "pod created after the outage", is(schema.EventInventoryPod, schema.ActionCreate, attr(schema.AttrK8sPodName, "after")))
	host.WaitStatus(t, componentstatus.StatusOK)
	// Relisting after the outage re-emits nothing that did not change.
	for _, r := range records(sink)[before:] {
		assert.Equal(t, "after", r.str(schema.AttrK8sPodName), "unexpected record after the outage: %v", r)
	}
}

func TestLeaderElection(t *testing.T) {
	env := kubeenv.Shared(t)
	cs := adminClient(t, env)
	ns := env.Namespace(t)
	ctx := t.Context()

	cfg := createDefaultConfig().(*Config)
	cfg.Namespaces.Include = []string{ns}
	cfg.LeaderElection = configoptional.Some(LeaderElectionConfig{
		LeaseName: "inventory", LeaseNamespace: ns,
		LeaseDuration: 4 * time.Second, RenewDeadline: 3 * time.Second, RetryPeriod: 500 * time.Millisecond,
	})
	type replica struct {
		r    *inventoryReceiver
		sink *consumertest.LogsSink
		tel  *componenttest.Telemetry
	}
	var replicas []*replica
	for _, id := range []string{"a", "b"} {
		rc, _ := isolatedConfig(t, env)
		rc.UserAgent += "/" + id
		tel := componenttest.NewTelemetry()
		t.Cleanup(func() { require.NoError(t, tel.Shutdown(context.Background())) })
		sink := &consumertest.LogsSink{}
		r := testReceiverWith(t, cfg, rc, sink, metadatatest.NewSettings(tel))
		r.leaderIdentity = id
		require.NoError(t, r.Start(ctx, &testutil.StatusHost{}))
		replicas = append(replicas, &replica{r, sink, tel})
	}

	holder := func() string {
		lease, err := cs.CoordinationV1().Leases(ns).Get(ctx, "inventory", metav1.GetOptions{})
		if err != nil || lease.Spec.HolderIdentity == nil {
			return ""
		}
		return *lease.Spec.HolderIdentity
	}
	require.Eventually(t, func() bool { return holder() != "" }, waitFor, tick)
	leader, follower := replicas[0], replicas[1]
	if holder() == "b" {
		leader, follower = follower, leader
	}
	waitRecord(t, leader.sink, "leader's snapshot", is(schema.EventInventorySnapshotComplete, ""))
	// Let the follower try for the lease a few times while the leader renews it.
	renewals := func() time.Time {
		lease, err := cs.CoordinationV1().Leases(ns).Get(ctx, "inventory", metav1.GetOptions{})
		require.NoError(t, err)
		return lease.Spec.RenewTime.Time
	}
	first := renewals()
	require.Eventually(t, func() bool { return renewals().Sub(first) >= 2*time.Second }, waitFor, tick)
	for _, r := range records(follower.sink) {
		assert.Equal(t, schema.EventInventorySnapshotStart, r.event, "a standby only announces itself; only the lease holder emits data")
	}
	metadatatest.AssertEqualK8sInventoryLeader(t, leader.tel, []metricdata.DataPoint[int64]{{Value: 1}}, metricdatatest.IgnoreTimestamp())
	metadatatest.AssertEqualK8sInventoryLeader(t, follower.tel, []metricdata.DataPoint[int64]{{Value: 0}}, metricdatatest.IgnoreTimestamp())

	// The leader stops (and releases the lease): the follower takes over with a snapshot.
	require.NoError(t, leader.r.Shutdown(context.Background()))
	emitted := leader.sink.LogRecordCount()
	waitRecord(t, follower.sink, "new leader's snapshot", is(schema.EventInventorySnapshotComplete, ""))
	assert.Equal(t, schema.EventInventorySnapshotStart, records(follower.sink)[0].event)
	assert.Len(t, find(records(follower.sink), is(schema.EventInventorySnapshotStart, "")), 2, "the announcement and the snapshot's start")
	assert.Equal(t, emitted, leader.sink.LogRecordCount(), "the old leader emits nothing more")
}
