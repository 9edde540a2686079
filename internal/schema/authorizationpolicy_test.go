package schema

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseAuthorizationPolicySpec(t *testing.T) {
	s, err := ParseAuthorizationPolicySpec(map[string]any{"action": "AUDIT", "rules": []any{map[string]any{}}})
	require.NoError(t, err)
	assert.Equal(t, "AUDIT", s.Action)
	assert.Len(t, s.Rules, 1)
	s, err = ParseAuthorizationPolicySpec(map[string]any{})
	require.NoError(t, err)
	assert.Empty(t, s.Action, "Istio's default")
	_, err = ParseAuthorizationPolicySpec(map[string]any{"selector": "app=web"})
	require.Error(t, err)
	_, err = ParseAuthorizationPolicySpec(map[string]any{"action": "allow"})
	assert.ErrorContains(t, err, `unknown action "allow"`)
}
