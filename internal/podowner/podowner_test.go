package podowner

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

func TestNames(t *testing.T) {
	tests := map[string]Ref{
		"frontend-7d9f8b6c5-x2x4k":     {KindDeployment, "frontend"},
		"payments-api-84d5b7c6f-2lq7s": {KindDeployment, "payments-api"},
		"coredns-76f75df574-8xgkq":     {KindDeployment, "coredns"},
		"redis-0":                      {}, // a StatefulSet's or a bare pod's
		"kafka-broker-12":              {},
		"backup-28457310-wqz5b":        {KindCronJob, "backup"},
		"node-exporter-4xk2p":          {}, // DaemonSet, Job or ReplicaSet: ambiguous
		"debug":                        {},
		"web-app-x2x4k":                {}, // "app" is no pod-template hash
		"frontend-7d9f8b6c5-x2x4a":     {}, // "a" is not in the suffix alphabet
		"api-7d9f8-x2k4p":              {}, // a hash this short is too rare to trust
		"api-7d9f8b6c5d4b2-x2k4p":      {}, // and this one is too long
		"api-7D9F8B6C5D-x2k4p":         {},
		"-":                            {},
		"trailing-":                    {},
		"":                             {},
		"frontend-7d9f8b6c5aa-x2x4k":   {},
		strings.Repeat("x", 300) + "-7d9f8b6c5-x2x4k": {KindDeployment, strings.Repeat("x", 300)},
	}
	for pod, want := range tests {
		got, ok := Names{}.Owner("ns", pod)
		assert.Equal(t, want != Ref{}, ok, pod)
		assert.Equal(t, want, got, pod)
	}
}

func TestTrimHashSuffix(t *testing.T) {
	for name, want := range map[string]string{
		"api-7d9f8b6c5d":      "api",
		"my-app-5c8b9d7f4b":   "my-app",
		"api-6b7c8d9f":        "api", // 8 characters
		"api-canary":          "",    // vowels are never in a hash
		"api-v1beta12":        "",
		"7d9f8b6c5d":          "",
		"-7d9f8b6c5d":         "",
		"checkout-api-123456": "", // digits 0, 1 and 3 are not in the alphabet
	} {
		got, ok := TrimHashSuffix(name)
		require.Equal(t, want, got, name)
		require.Equal(t, want != "", ok, name)
	}
}

func TestIsStatefulSetPod(t *testing.T) {
	require.True(t, IsStatefulSetPod("db", "db-0"))
	require.True(t, IsStatefulSetPod("db", "db-12"))
	require.False(t, IsStatefulSetPod("db", "db-01"))
	require.False(t, IsStatefulSetPod("db", "db-"))
	require.False(t, IsStatefulSetPod("db", "db-x"))
	require.False(t, IsStatefulSetPod("db", "dbx-0"))
	require.False(t, IsStatefulSetPod("db", "db-0-1"))
}

type fixed map[string]Ref

func (f fixed) Owner(namespace, pod string) (Ref, bool) {
	ref, ok := f[namespace+"/"+pod]
	return ref, ok
}

func TestChain(t *testing.T) {
	c := Chain{fixed{"ns/web-7d9f8b6c5-x2x4k": {"Rollout", "web"}}, Names{}}
	ref, ok := c.Owner("ns", "web-7d9f8b6c5-x2x4k")
	assert.True(t, ok)
	assert.Equal(t, Ref{"Rollout", "web"}, ref, "the first resolver that knows the pod answers")
	ref, ok = c.Owner("other", "web-7d9f8b6c5-x2x4k")
	assert.True(t, ok)
	assert.Equal(t, Ref{KindDeployment, "web"}, ref)
	_, ok = c.Owner("ns", "debug")
	assert.False(t, ok)
}

func controlledBy(kind, name string) []metav1.OwnerReference {
	return []metav1.OwnerReference{
		{Kind: "ConfigMap", Name: "not-a-controller"},
		{Kind: kind, Name: name, Controller: ptr.To(true)},
	}
}

func TestOwnerOf(t *testing.T) {
	rsets := map[string]*appsv1.ReplicaSet{
		"web-7d9f8b6c5": {ObjectMeta: metav1.ObjectMeta{OwnerReferences: controlledBy(KindDeployment, "web")}},
		"rollout-rs":    {ObjectMeta: metav1.ObjectMeta{OwnerReferences: controlledBy("Rollout", "canary")}},
		"bare-rs":       {},
	}
	jobs := map[string]*batchv1.Job{
		"backup-28457310": {ObjectMeta: metav1.ObjectMeta{OwnerReferences: controlledBy(KindCronJob, "backup")}},
	}
	replicaSet := func(_, name string) *appsv1.ReplicaSet { return rsets[name] }
	job := func(_, name string) *batchv1.Job { return jobs[name] }
	tests := map[string]struct {
		owners []metav1.OwnerReference
		want   Ref
	}{
		"deployment":           {controlledBy(KindReplicaSet, "web-7d9f8b6c5"), Ref{KindDeployment, "web"}},
		"replicaset of other":  {controlledBy(KindReplicaSet, "rollout-rs"), Ref{KindReplicaSet, "rollout-rs"}},
		"bare replicaset":      {controlledBy(KindReplicaSet, "bare-rs"), Ref{KindReplicaSet, "bare-rs"}},
		"replicaset not known": {controlledBy(KindReplicaSet, "gone"), Ref{KindReplicaSet, "gone"}},
		"cronjob":              {controlledBy(KindJob, "backup-28457310"), Ref{KindCronJob, "backup"}},
		"bare job":             {controlledBy(KindJob, "migrate"), Ref{KindJob, "migrate"}},
		"statefulset":          {controlledBy(KindStatefulSet, "db"), Ref{KindStatefulSet, "db"}},
		"daemonset":            {controlledBy(KindDaemonSet, "agent"), Ref{KindDaemonSet, "agent"}},
		"no controller":        {[]metav1.OwnerReference{{Kind: "ConfigMap", Name: "x"}}, Ref{}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "p", OwnerReferences: tc.owners}}
			got, ok := OwnerOf(p, replicaSet, job)
			assert.Equal(t, tc.want != Ref{}, ok)
			assert.Equal(t, tc.want, got)
		})
	}
}
