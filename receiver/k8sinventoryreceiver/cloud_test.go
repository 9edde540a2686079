package k8sinventoryreceiver

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	cloudv1 "github.com/kestrelai/otelcol-kestrel/api/cloud/v1"
	"github.com/kestrelai/otelcol-kestrel/internal/devcloud"
	"github.com/kestrelai/otelcol-kestrel/internal/kubeenv"
	"github.com/kestrelai/otelcol-kestrel/internal/testutil/pipelinetest"
)

func typeName(m proto.Message) protoreflect.Name { return m.ProtoReflect().Descriptor().Name() }

var inventoryTypes = map[protoreflect.Name]bool{
	"Namespace": true, "Node": true, "Workload": true, "Pod": true, "Service": true, "NetworkPolicy": true, "AuthorizationPolicy": true,
}

// snapshotOf returns the inventory messages before the first InventoryCommit, grouped by
// type, and whether a commit followed them. Events may be interleaved; they are skipped.
func snapshotOf(msgs []proto.Message) (map[protoreflect.Name][]proto.Message, bool) {
	out := map[protoreflect.Name][]proto.Message{}
	for _, m := range msgs {
		if _, ok := m.(*cloudv1.InventoryCommit); ok {
			return out, true
		}
		if inventoryTypes[typeName(m)] {
			out[typeName(m)] = append(out[typeName(m)], m)
		}
	}
	return out, false
}

// TestCloudGetsInventoryAndReplaysItWithoutListing runs the whole path: the receiver
// against a real apiserver, the kestrel exporter, the kestrel_command extension and
// kestrel-devcloud, which is restarted in the middle.
func TestCloudGetsInventoryAndReplaysItWithoutListing(t *testing.T) {
	env := kubeenv.Shared(t)
	cs := adminClient(t, env)
	ns := env.Namespace(t)
	workloads(t, cs, ns)
	ctx := t.Context()

	rc, counter := isolatedConfig(t, env)
	cfg := createDefaultConfig().(*Config)
	cfg.Namespaces.Include = []string{ns}
	// Started in the collector's order: extensions, exporters, receivers, then Ready.
	pipeline := pipelinetest.New(t, devcloud.Config{HeartbeatInterval: 200 * time.Millisecond, DrainTimeout: 2 * time.Second})
	cloud := pipeline.Cloud
	r := testReceiver(t, cfg, rc, pipeline.Exporter)
	require.NoError(t, r.Start(ctx, pipeline.Host))
	pipeline.Ready(t)

	cloud.WaitCommitted(t)
	snap, ok := snapshotOf(cloud.Payloads())
	require.True(t, ok)
	counts := map[protoreflect.Name]int{}
	for name, msgs := range snap {
		counts[name] = len(msgs)
		for _, m := range msgs {
			action := cloudv1.Action(m.ProtoReflect().Get(m.ProtoReflect().Descriptor().Fields().ByName("action")).Enum())
			assert.Equal(t, cloudv1.Action_ACTION_CREATE, action, "snapshot messages are creates: %v", m)
		}
	}
	// 7 workloads: Deployment, its ReplicaSet, StatefulSet, DaemonSet, Job, CronJob and the bare pod.
	assert.Equal(t, map[protoreflect.Name]int{"Namespace": 1, "Workload": 7, "Pod": 4, "Service": 1, "NetworkPolicy": 1}, counts)
	cloud.WaitPayload(t, "the Warning event", func(m proto.Message) bool {
		e, ok := m.(*cloudv1.KubernetesEvent)
		return ok && e.Reason == "BackOff" && e.InvolvedObject.GetName() == "debug"
	})

	// Deltas: an update and a delete, each with its action.
	_, err := cs.AppsV1().Deployments(ns).Patch(ctx, "web", types.MergePatchType, []byte(`{"metadata":{"labels":{"tier":"back"}}}`), metav1.PatchOptions{})
	require.NoError(t, err)
	cloud.WaitPayload(t, "the Deployment update", func(m proto.Message) bool {
		w, ok := m.(*cloudv1.Workload)
		return ok && w.Kind == "Deployment" && w.Action == cloudv1.Action_ACTION_UPDATE && w.Labels["tier"] == "back"
	})
	require.NoError(t, cs.CoreV1().Pods(ns).Delete(ctx, "debug", metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)}))
	cloud.WaitPayload(t, "the Pod delete", func(m proto.Message) bool {
		p, ok := m.(*cloudv1.Pod)
		return ok && p.Name == "debug" && p.Action == cloudv1.Action_ACTION_DELETE
	})
	cloud.WaitPayload(t, "the bare pod's Workload delete", func(m proto.Message) bool {
		w, ok := m.(*cloudv1.Workload)
		return ok && w.Kind == "Pod" && w.Action == cloudv1.Action_ACTION_DELETE
	})

	// Kestrel Cloud restarts: the mirror is replayed and committed again, and the
	// apiserver sees no new List (or WatchList) from us.
	lists := counter.lists.Load()
	cloud.Stop()
	cloud.Restart(t)
	cloud.WaitCommitted(t)
	snap, ok = snapshotOf(cloud.Payloads())
	require.True(t, ok)
	counts = map[protoreflect.Name]int{}
	for name, msgs := range snap {
		counts[name] = len(msgs)
	}
	assert.Equal(t, map[protoreflect.Name]int{"Namespace": 1, "Workload": 6, "Pod": 3, "Service": 1, "NetworkPolicy": 1}, counts, "the current inventory, without the deleted pod")
	for _, m := range snap["Workload"] {
		if w := m.(*cloudv1.Workload); w.Kind == "Deployment" {
			assert.Equal(t, "back", w.Labels["tier"], "the replay carries the latest state")
		}
	}
	assert.Equal(t, lists, counter.lists.Load(), "no List or WatchList request after the reconnect")

	// Changes keep flowing on the new connection: every kind is created, updated and
	// deleted, and devcloud sees each with its action.
	_, err = cs.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "late"}, Spec: podTemplate("late").Spec}, metav1.CreateOptions{})
	require.NoError(t, err)
	cloud.WaitPayload(t, "a pod created after the restart", func(m proto.Message) bool {
		p, ok := m.(*cloudv1.Pod)
		return ok && p.Name == "late" && p.Action == cloudv1.Action_ACTION_CREATE
	})
	nodeName := "node-" + ns
	_, err = cs.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: nodeName}}, metav1.CreateOptions{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = cs.CoreV1().Nodes().Delete(context.Background(), nodeName, metav1.DeleteOptions{}) })
	cloud.WaitPayload(t, "the Node create", func(m proto.Message) bool {
		n, ok := m.(*cloudv1.Node)
		return ok && n.Name == nodeName && n.Action == cloudv1.Action_ACTION_CREATE
	})
	cloud.WaitPayload(t, "the new node's conditions (not Ready)", func(m proto.Message) bool {
		n, ok := m.(*cloudv1.NodeConditionChange)
		return ok && n.Name == nodeName
	})
	rs, err := cs.AppsV1().ReplicaSets(ns).List(ctx, metav1.ListOptions{})
	require.NoError(t, err)
	require.NotEmpty(t, rs.Items)
	rsName := rs.Items[0].Name

	label := []byte(`{"metadata":{"labels":{"e2e":"updated"}}}`)
	type object struct {
		kind          string // cloud.v1 message, or the Workload kind
		name          string
		patch, delete func() error
	}
	del := metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)}
	objects := []object{
		{"NetworkPolicy", "web-ingress",
			func() error {
				_, err := cs.NetworkingV1().NetworkPolicies(ns).Patch(ctx, "web-ingress", types.MergePatchType, label, metav1.PatchOptions{})
				return err
			},
			func() error { return cs.NetworkingV1().NetworkPolicies(ns).Delete(ctx, "web-ingress", del) }},
		{"Service", "web",
			func() error {
				_, err := cs.CoreV1().Services(ns).Patch(ctx, "web", types.MergePatchType, label, metav1.PatchOptions{})
				return err
			},
			func() error { return cs.CoreV1().Services(ns).Delete(ctx, "web", del) }},
		{"Pod", "late",
			func() error {
				_, err := cs.CoreV1().Pods(ns).Patch(ctx, "late", types.MergePatchType, label, metav1.PatchOptions{})
				return err
			},
			func() error { return cs.CoreV1().Pods(ns).Delete(ctx, "late", del) }},
		{"Node", nodeName,
			func() error {
				_, err := cs.CoreV1().Nodes().Patch(ctx, nodeName, types.MergePatchType, label, metav1.PatchOptions{})
				return err
			},
			func() error { return cs.CoreV1().Nodes().Delete(ctx, nodeName, del) }},
		{"CronJob", "nightly",
			func() error {
				_, err := cs.BatchV1().CronJobs(ns).Patch(ctx, "nightly", types.MergePatchType, label, metav1.PatchOptions{})
				return err
			},
			func() error { return cs.BatchV1().CronJobs(ns).Delete(ctx, "nightly", del) }},
		{"Job", "once",
			func() error {
				_, err := cs.BatchV1().Jobs(ns).Patch(ctx, "once", types.MergePatchType, label, metav1.PatchOptions{})
				return err
			},
			func() error { return cs.BatchV1().Jobs(ns).Delete(ctx, "once", del) }},
		{"DaemonSet", "agent",
			func() error {
				_, err := cs.AppsV1().DaemonSets(ns).Patch(ctx, "agent", types.MergePatchType, label, metav1.PatchOptions{})
				return err
			},
			func() error { return cs.AppsV1().DaemonSets(ns).Delete(ctx, "agent", del) }},
		{"StatefulSet", "db",
			func() error {
				_, err := cs.AppsV1().StatefulSets(ns).Patch(ctx, "db", types.MergePatchType, label, metav1.PatchOptions{})
				return err
			},
			func() error { return cs.AppsV1().StatefulSets(ns).Delete(ctx, "db", del) }},
		{"ReplicaSet", rsName,
			func() error {
				_, err := cs.AppsV1().ReplicaSets(ns).Patch(ctx, rsName, types.MergePatchType, label, metav1.PatchOptions{})
				return err
			},
			func() error { return cs.AppsV1().ReplicaSets(ns).Delete(ctx, rsName, del) }},
		{"Deployment", "web",
			func() error {
				_, err := cs.AppsV1().Deployments(ns).Patch(ctx, "web", types.MergePatchType, label, metav1.PatchOptions{})
				return err
			},
			func() error { return cs.AppsV1().Deployments(ns).Delete(ctx, "web", del) }},
	}
	// is reports whether m is the object's message with the action (and, for updates, the label).
	is := func(o object, action cloudv1.Action) func(proto.Message) bool {
		return func(m proto.Message) bool {
			var name string
			var labels map[string]string
			var got cloudv1.Action
			switch p := m.(type) {
			case *cloudv1.Workload:
				if p.Kind != o.kind {
					return false
				}
				name, labels, got = p.Name, p.Labels, p.Action
			case *cloudv1.Pod:
				name, labels, got = p.Name, p.Labels, p.Action
			case *cloudv1.Service:
				name, labels, got = p.Name, p.Labels, p.Action
			case *cloudv1.Node:
				name, labels, got = p.Name, p.Labels, p.Action
			case *cloudv1.NetworkPolicy:
				name, labels, got = p.Metadata.GetName(), p.Metadata.GetLabels(), p.Action
			default:
				return false
			}
			if _, workload := m.(*cloudv1.Workload); !workload && string(typeName(m)) != o.kind {
				return false
			}
			return name == o.name && got == action && (action != cloudv1.Action_ACTION_UPDATE || labels["e2e"] == "updated")
		}
	}
	for _, o := range objects {
		require.NoError(t, o.patch(), o.kind)
		cloud.WaitPayload(t, o.kind+" "+o.name+" update", is(o, cloudv1.Action_ACTION_UPDATE))
	}
	for _, o := range objects {
		require.NoError(t, o.delete(), o.kind)
		cloud.WaitPayload(t, o.kind+" "+o.name+" delete", is(o, cloudv1.Action_ACTION_DELETE))
	}
	_, err = cs.CoreV1().Namespaces().Patch(ctx, ns, types.MergePatchType, label, metav1.PatchOptions{})
	require.NoError(t, err)
	cloud.WaitPayload(t, "the Namespace update", func(m proto.Message) bool {
		n, ok := m.(*cloudv1.Namespace)
		return ok && n.Name == ns && n.Action == cloudv1.Action_ACTION_UPDATE && n.Labels["e2e"] == "updated"
	})
	require.NoError(t, cs.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{}))
	cloud.WaitPayload(t, "the Namespace delete", func(m proto.Message) bool {
		n, ok := m.(*cloudv1.Namespace)
		return ok && n.Name == ns && n.Action == cloudv1.Action_ACTION_DELETE
	})
}
