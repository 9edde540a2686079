package scrub

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

const secretValue = "hunter2-marker-value"

var b64 = base64.StdEncoding.EncodeToString([]byte(secretValue))

func TestScrub(t *testing.T) {
	lastApplied := `{\"apiVersion\":\"v1\",\"data\":{\"password\":\"` + b64 + `\"},\"kind\":\"Secret\"}`
	for name, tc := range map[string]struct {
		in   string
		opts Options
		want string
	}{
		"secret": {
			in:   `{"kind":"Secret","apiVersion":"v1","metadata":{"name":"s","managedFields":[{"manager":"kubectl"}],"annotations":{"a":"b","` + LastApplied + `":"` + lastApplied + `"}},"data":{"password":"` + b64 + `","empty":""},"stringData":{"x":"` + secretValue + `"},"type":"Opaque"}`,
			want: `{"kind":"Secret","apiVersion":"v1","metadata":{"name":"s","annotations":{"a":"b"}},"data":{"password":"` + enc(Marker(20)) + `","empty":"` + enc(Marker(0)) + `"},"stringData":{"x":"<redacted: 20 bytes>"},"type":"Opaque"}`,
		},
		"kind after data (sorted keys of a custom resource)": {
			in:   `{"spec":{"template":{"apiVersion":"v1","data":{"password":"` + b64 + `"},"kind":"Secret"}}}`,
			want: `{"spec":{"template":{"apiVersion":"v1","kind":"Secret","data":{"password":"` + enc(Marker(20)) + `"}}}}`,
		},
		"configmap keeps its data, in either order": {
			in:   `[{"kind":"ConfigMap","data":{"k":"v"}},{"data":{"k":"v"},"kind":"ConfigMap"},{"data":{"k":"v"}}]`,
			want: `[{"kind":"ConfigMap","data":{"k":"v"}},{"kind":"ConfigMap","data":{"k":"v"}},{"data":{"k":"v"}}]`,
		},
		"secret list items have no kind": {
			in:   `{"kind":"SecretList","items":[{"metadata":{"name":"a"},"data":{"p":"` + b64 + `"}}]}`,
			want: `{"kind":"SecretList","items":[{"metadata":{"name":"a"},"data":{"p":"` + enc(Marker(20)) + `"}}]}`,
		},
		"v1.List": {
			in:   `{"kind":"List","items":[{"kind":"Secret","data":{"p":"` + b64 + `"}},{"kind":"Pod","metadata":{"managedFields":[]}}]}`,
			want: `{"kind":"List","items":[{"kind":"Secret","data":{"p":"` + enc(Marker(20)) + `"}},{"kind":"Pod","metadata":{}}]}`,
		},
		"secret scope: table rows and watch events": {
			in:   `{"kind":"Table","rows":[{"cells":["a"],"object":{"metadata":{"name":"a"},"data":{"p":"` + b64 + `"}}}]}` + "\n" + `{"type":"ADDED","object":{"data":{"p":"` + b64 + `"}}}`,
			opts: Options{SecretScope: true},
			want: `{"kind":"Table","rows":[{"cells":["a"],"object":{"metadata":{"name":"a"},"data":{"p":"` + enc(Marker(20)) + `"}}}]}` + "\n" + `{"type":"ADDED","object":{"data":{"p":"` + enc(Marker(20)) + `"}}}`,
		},
		"non-map data of a secret": {
			in:   `{"kind":"Secret","data":["` + secretValue + `"],"stringData":{"n":{"deep":"` + secretValue + `"}}}`,
			want: `{"kind":"Secret","data":"` + enc("<redacted>") + `","stringData":{"n":"<redacted>"}}`,
		},
		"numbers and escapes survive": {
			in:   `{"n":12345678901234567890,"f":1.5e3,"s":"a\"\\\u0001<>","b":true,"z":null}`,
			want: `{"n":12345678901234567890,"f":1.5e3,"s":"a\"\\\u0001<>","b":true,"z":null}`,
		},
	} {
		t.Run(name, func(t *testing.T) {
			out, err := Bytes([]byte(tc.in), tc.opts)
			require.NoError(t, err)
			assert.Equal(t, tc.want, string(out))
			assert.NotContains(t, string(out), secretValue)
			assert.NotContains(t, string(out), b64)
		})
	}
}

func enc(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// A scrubbed Secret still decodes as a typed Secret (kubectl describe reads it so), and
// each value decodes to its marker.
func TestScrubbedSecretDecodes(t *testing.T) {
	in, err := json.Marshal(&corev1.Secret{
		TypeMeta: metaSecret,
		Data:     map[string][]byte{"password": []byte(secretValue), "one": {1}},
	})
	require.NoError(t, err)
	out, err := Bytes(in, Options{})
	require.NoError(t, err)
	var s corev1.Secret
	require.NoError(t, json.Unmarshal(out, &s))
	assert.Equal(t, Marker(20), string(s.Data["password"]))
	assert.Equal(t, Marker(1), string(s.Data["one"]))
}

func TestScrubRefuses(t *testing.T) {
	for name, in := range map[string]string{
		"duplicate kind":   `{"kind":"ConfigMap","data":{"k":"` + b64 + `"},"kind":"Secret"}`,
		"truncated":        `{"kind":"Secret","data":{"k":"`,
		"garbage":          `{"a" 1}`,
		"too deep":         strings.Repeat("[", maxDepth+2) + strings.Repeat("]", maxDepth+2),
		"unterminated str": `"abc`,
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Bytes([]byte(in), Options{})
			require.Error(t, err)
		})
	}
}

func FuzzScrub(f *testing.F) {
	f.Add([]byte(`{"kind":"Secret","data":{"p":"`+b64+`"}}`), false)
	f.Add([]byte(`{"data":{"p":"`+b64+`"},"kind":"Secret"}`), false)
	f.Add([]byte(`{"kind":"SecretList","items":[{"data":{"p":"`+b64+`"}}]}`), false)
	f.Add([]byte(`{"rows":[{"object":{"data":{"p":"`+b64+`"}}}]}`), true)
	f.Add([]byte(`{"metadata":{"annotations":{"`+LastApplied+`":"x"},"managedFields":[{}]}}`), false)
	f.Fuzz(func(t *testing.T, in []byte, scope bool) {
		out, err := Bytes(in, Options{SecretScope: scope})
		if err != nil {
			return
		}
		// The output is a stream of JSON values again (scrubbing it again re-marks the
		// markers, so it is not idempotent by design).
		if _, err := Bytes(out, Options{SecretScope: scope}); err != nil {
			t.Fatalf("output does not parse again: %v\n%s", err, out)
		}
		// No secret value survives: every string under a Secret's data is a marker.
		dec := json.NewDecoder(bytes.NewReader(out))
		for dec.More() {
			var v any
			if err := dec.Decode(&v); err != nil {
				t.Fatalf("output is not JSON: %v", err)
			}
			checkSecrets(t, v, scope)
		}
	})
}

var metaSecret = metav1.TypeMeta{Kind: "Secret", APIVersion: "v1"}

// checkSecrets fails when an object that is a Secret carries a data or stringData value
// that is not a marker.
func checkSecrets(t *testing.T, v any, secret bool) {
	t.Helper()
	switch x := v.(type) {
	case []any:
		for _, e := range x {
			checkSecrets(t, e, secret)
		}
	case map[string]any:
		kind, _ := x["kind"].(string)
		isSecret := secret || strings.EqualFold(kind, "Secret")
		for k, e := range x {
			switch {
			case isSecret && (k == "data" || k == "stringData"):
				checkMarkers(t, e, k == "data")
			case k == "items" && strings.EqualFold(kind, "SecretList"):
				checkSecrets(t, e, true)
			case k == "managedFields":
				if _, meta := x["name"]; meta {
					t.Fatalf("managedFields kept")
				}
				checkSecrets(t, e, secret)
			default:
				checkSecrets(t, e, secret)
			}
		}
	}
}

func checkMarkers(t *testing.T, v any, b64 bool) {
	t.Helper()
	isMarker := func(s string) bool {
		if b64 {
			d, err := base64.StdEncoding.DecodeString(s)
			if err != nil {
				return false
			}
			s = string(d)
		}
		return strings.HasPrefix(s, "<redacted")
	}
	switch x := v.(type) {
	case string:
		if !isMarker(x) {
			t.Fatalf("secret value %q is not a marker", x)
		}
	case map[string]any:
		for _, e := range x {
			if s, ok := e.(string); !ok || !isMarker(s) {
				t.Fatalf("secret value %v is not a marker", e)
			}
		}
	default:
		t.Fatalf("secret data %v is not a marker", v)
	}
}
