package workload

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kestrelai/otelcol-kestrel/internal/podowner"
)

func TestParseKind(t *testing.T) {
	got, err := ParseKind("statefulSET")
	require.NoError(t, err)
	require.Equal(t, podowner.KindStatefulSet, got)
	_, err = ParseKind("Rollout")
	require.EqualError(t, err, `unknown workload_kind "Rollout" (supported: Deployment, StatefulSet, DaemonSet, ReplicaSet, Job, CronJob)`)
}

type owners map[string]podowner.Ref

func (o owners) Owner(namespace, pod string) (podowner.Ref, bool) {
	ref, ok := o[namespace+"/"+pod]
	return ref, ok
}

func TestResolvePrecedence(t *testing.T) {
	ref := func(kind, name string) podowner.Ref { return podowner.Ref{Kind: kind, Name: name} }
	const deploy, sts, rs = podowner.KindDeployment, podowner.KindStatefulSet, podowner.KindReplicaSet
	exact := owners{"ns/api-7d9f8b6c5d-x2k4p": {Kind: sts, Name: "exact"}}
	require.Equal(t, ref(sts, "exact"), Resolve(exact, "ns", "api-7d9f8b6c5d-x2k4p", ref(deploy, "attr")))
	require.Equal(t, ref(deploy, "attr"), Resolve(exact, "other", "api-7d9f8b6c5d-x2k4p", ref(deploy, "attr")))
	require.Equal(t, ref(deploy, "api"), Resolve(nil, "ns", "x", ref(rs, "api-7d9f8b6c5d")))
	require.Equal(t, ref(rs, "cache"), Resolve(nil, "ns", "x", ref(rs, "cache")))
	require.Equal(t, ref(deploy, "api"), Resolve(nil, "ns", "api-7d9f8b6c5d-x2k4p", ref("", "")))
	require.Equal(t, ref("", ""), Resolve(nil, "ns", "fluentd-x2k4p", ref("", "")))
	require.Equal(t, ref("", ""), Resolve(nil, "ns", "", ref("", "")))
}
