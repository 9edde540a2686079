package manifest

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const policy = `apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: allow-web
spec:
  podSelector:
    matchLabels: {app: web}
  ingress:
  - ports: [{port: 8080}]
`

func TestDecodeMultiDocument(t *testing.T) {
	objs, err := Decode("# leading comment\n---\n"+policy+"---\n---\napiVersion: v1\nkind: Namespace\nmetadata: {name: shop}\n", DefaultLimits)
	require.NoError(t, err)
	require.Len(t, objs, 2)
	assert.Equal(t, "networking.k8s.io/v1 NetworkPolicy allow-web", Name(objs[0]))
	assert.Equal(t, "v1 Namespace shop", Name(objs[1]))
	ports := objs[0].Object["spec"].(map[string]any)["ingress"].([]any)[0].(map[string]any)["ports"].([]any)
	assert.Equal(t, int64(8080), ports[0].(map[string]any)["port"], "numbers are int64, as unstructured objects need")
}

func TestDecodeAnchorsWithinBounds(t *testing.T) {
	objs, err := Decode("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, labels: &l {app: web}}\ndata: {x: y}\nspec: {selector: *l}\n", DefaultLimits)
	require.NoError(t, err)
	assert.Equal(t, map[string]any{"app": "web"}, objs[0].Object["spec"].(map[string]any)["selector"])
}

// bomb is the classic "billion laughs": nine levels of nine aliases, 9^9 leaves once
// expanded, a few hundred bytes as text.
func bomb() string {
	var b strings.Builder
	b.WriteString("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: lol}\nx0: &a0 [lol]\n")
	for i := 1; i <= 9; i++ {
		refs := strings.TrimSuffix(strings.Repeat("*a"+string(rune('0'+i-1))+", ", 9), ", ")
		b.WriteString("x" + string(rune('0'+i)) + ": &a" + string(rune('0'+i)) + " [" + refs + "]\n")
	}
	b.WriteString("data: *a9\n")
	return b.String()
}

func TestDecodeRefuses(t *testing.T) {
	for name, tc := range map[string]struct{ text, want string }{
		"alias bomb":     {bomb(), "expands to more than 100000 YAML nodes"},
		"100 MiB":        {strings.Repeat("#", 100<<20), "manifest is 104857600 bytes; at most 1048576 are accepted"},
		"not YAML":       {"a: [b", "document 1: invalid YAML"},
		"scalar":         {"hello", "not a Kubernetes object"},
		"no kind":        {"apiVersion: v1\nmetadata: {name: x}", "'Kind' is missing"},
		"no apiVersion":  {"kind: Pod\nmetadata: {name: x}", "apiVersion is missing"},
		"no name":        {"apiVersion: v1\nkind: Pod\nmetadata: {generateName: x-}", "Pod has no metadata.name"},
		"empty":          {"---\n# nothing\n---\n", "manifest contains no object"},
		"non-string key": {"apiVersion: v1\nkind: Pod\nmetadata: {name: x}\ny: {1: a}", "mapping key 1 is not a string"},
		"many docs":      {strings.Repeat(policy+"---\n", 40), "more than 32 YAML documents"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Decode(tc.text, DefaultLimits)
			var me *Error
			require.ErrorAs(t, err, &me)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

func FuzzDecode(f *testing.F) {
	for _, s := range []string{policy, bomb(), "a: &x [*x]", "---\n---\n", "apiVersion: v1\nkind: List\nmetadata: {name: x}\nitems: [{a: 1.5e3}]", "{"} {
		f.Add(s)
	}
	small := Limits{MaxBytes: 64 << 10, MaxDocuments: 8, MaxNodes: 10_000}
	f.Fuzz(func(t *testing.T, text string) {
		objs, err := Decode(text, small)
		if err != nil {
			var me *Error
			require.ErrorAs(t, err, &me)
			return
		}
		require.NotEmpty(t, objs)
		for _, o := range objs {
			require.NotEmpty(t, o.GetKind())
			require.NotEmpty(t, o.GetName())
			_ = o.DeepCopy() // panics on values an unstructured object cannot hold
		}
	})
}
