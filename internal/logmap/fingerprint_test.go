package logmap

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/kestrelai/otelcol-kestrel/internal/schema"
)

func TestFingerprint(t *testing.T) {
	rollout := func(ts int64, action, status string) plog.LogRecord {
		lr := plog.NewLogRecord()
		lr.SetEventName(schema.EventWorkloadRolloutStatus)
		lr.SetTimestamp(pcommon.Timestamp(ts))
		m := lr.Attributes()
		m.PutStr(schema.AttrWorkloadKind, "Deployment")
		m.PutStr(schema.WorkloadKinds["Deployment"]+".name", "web")
		m.PutStr(schema.WorkloadKinds["Deployment"]+".uid", "d-uid")
		m.PutStr(schema.AttrK8sNamespaceName, "prod")
		m.PutStr(schema.AttrRolloutStatus, status)
		m.PutStr(schema.AttrAction, action)
		return lr
	}
	a, ok := Fingerprint(rollout(1e18, schema.ActionCreate, "Progressing"))
	require.True(t, ok)
	b, ok := Fingerprint(rollout(2e18, schema.ActionUpdate, "Progressing"))
	require.True(t, ok)
	assert.Equal(t, a, b, "the time and the action are not what was seen")
	c, ok := Fingerprint(rollout(1e18, schema.ActionCreate, "TimedOut"))
	require.True(t, ok)
	assert.NotEqual(t, a, c)

	invalid := rollout(1e18, schema.ActionCreate, "Progressing")
	invalid.Attributes().Remove(schema.AttrK8sNamespaceName)
	_, ok = Fingerprint(invalid)
	assert.False(t, ok, "a record that maps to no message has no fingerprint")

	assert.NotEqual(t, FingerprintKey(schema.EventPodStatusChange, "u"), FingerprintKey(schema.EventNodeConditionChange, "u"))
}
