package workload

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestTrimHashSuffix(t *testing.T) {
	for name, want := range map[string]string{
		"api-7d9f8b6c5d":      "api",
		"my-app-5c8b9d7f4b":   "my-app",
		"api-6b7c8d9f":        "api", // 8 characters
		"api-canary":          "",    // vowels are never in a hash
		"api-v1beta12":        "",
		"api-7d9f8b6c5d4b2":   "", // too long
		"api-7d9f8":           "", // too short
		"7d9f8b6c5d":          "",
		"-7d9f8b6c5d":         "",
		"api-7D9F8B6C5D":      "",
		"checkout-api-123456": "", // digits 0, 1 and 3 are not in the alphabet
	} {
		got, ok := TrimHashSuffix(name)
		require.Equal(t, want, got, name)
		require.Equal(t, want != "", ok, name)
	}
}

func TestDeploymentFromPodName(t *testing.T) {
	for pod, want := range map[string]string{
		"api-7d9f8b6c5d-x2k4p":      "api",
		"checkout-5c8b9d7f4b-q9zxw": "checkout",
		"fluentd-x2k4p":             "", // DaemonSet or Job pod: ambiguous
		"api-7d9f8b6c5d-x2k4":       "",
		"api-7d9f8b6c5d-x2k4a":      "",
		"db-0":                      "",
		"":                          "",
	} {
		got, ok := DeploymentFromPodName(pod)
		require.Equal(t, want, got, pod)
		require.Equal(t, want != "", ok, pod)
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

func TestParseKind(t *testing.T) {
	got, err := ParseKind("statefulSET")
	require.NoError(t, err)
	require.Equal(t, KindStatefulSet, got)
	_, err = ParseKind("Rollout")
	require.EqualError(t, err, `unknown workload_kind "Rollout" (supported: Deployment, StatefulSet, DaemonSet, ReplicaSet, Job, CronJob)`)
}

type owners map[string]Ref

func (o owners) Owner(namespace, pod string) (Ref, bool) {
	ref, ok := o[namespace+"/"+pod]
	return ref, ok
}

func TestResolvePrecedence(t *testing.T) {
	exact := owners{"ns/api-7d9f8b6c5d-x2k4p": {Kind: KindStatefulSet, Name: "exact"}}
	require.Equal(t, Ref{KindStatefulSet, "exact"}, Resolve(exact, "ns", "api-7d9f8b6c5d-x2k4p", Ref{KindDeployment, "attr"}))
	require.Equal(t, Ref{KindDeployment, "attr"}, Resolve(exact, "other", "api-7d9f8b6c5d-x2k4p", Ref{KindDeployment, "attr"}))
	require.Equal(t, Ref{KindDeployment, "api"}, Resolve(nil, "ns", "x", Ref{KindReplicaSet, "api-7d9f8b6c5d"}))
	require.Equal(t, Ref{KindDeployment, "api"}, Resolve(nil, "ns", "api-7d9f8b6c5d-x2k4p", Ref{}))
	require.Equal(t, Ref{}, Resolve(nil, "ns", "", Ref{}))
}
