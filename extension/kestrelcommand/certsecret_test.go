package kestrelcommand

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/util/validation"
)

// FuzzSecretConfigValidate: any certificate_renewal::secret is judged without a panic, and
// what passes is a Secret the API could hold with two distinct valid keys.
func FuzzSecretConfigValidate(f *testing.F) {
	f.Add("kestrel-ai", "kestrel-operator-client-tls", "tls.crt", "tls.key", int64(10*time.Second))
	f.Add("", "", "tls.crt", "tls.key", int64(time.Second))
	f.Add("ns", "", "", "", int64(0))
	f.Add("Bad_NS", "a/b", "a/b", "a/b", int64(-1))
	f.Add("ns", "n", "..", "x", int64(time.Hour))
	f.Fuzz(func(t *testing.T, ns, name, certKey, keyKey string, timeout int64) {
		s := SecretConfig{SecretRef: SecretRef{Namespace: ns, Name: name, Timeout: time.Duration(timeout)}, CertKey: certKey, KeyKey: keyKey}
		errs := s.validate()
		if len(errs) > 0 {
			for _, err := range errs {
				require.True(t, strings.HasPrefix(err.Error(), "certificate_renewal::secret::"), err.Error())
			}
			return
		}
		require.Equal(t, ns == "", name == "")
		require.Empty(t, validation.IsConfigMapKey(certKey))
		require.Empty(t, validation.IsConfigMapKey(keyKey))
		require.NotEqual(t, certKey, keyKey)
		if name != "" {
			require.Empty(t, validation.IsDNS1123Subdomain(name))
			require.Empty(t, validation.IsDNS1123Label(ns))
		}
	})
}

// FuzzTokenSecretConfigValidate: any token::persist_secret is judged without a panic, and
// what passes names a Secret the API could hold and a valid key.
func FuzzTokenSecretConfigValidate(f *testing.F) {
	f.Add("kestrel-ai", "kestrel-operator-token", "token", int64(10*time.Second))
	f.Add("", "", "token", int64(time.Second))
	f.Add("ns", "", "", int64(0))
	f.Add("Bad_NS", "a/b", "a/b", int64(-1))
	f.Add("ns", "n", "..", int64(time.Hour))
	f.Fuzz(func(t *testing.T, ns, name, key string, timeout int64) {
		s := TokenSecretConfig{SecretRef: SecretRef{Namespace: ns, Name: name, Timeout: time.Duration(timeout)}, Key: key}
		errs := s.validate()
		if len(errs) > 0 {
			for _, err := range errs {
				require.True(t, strings.HasPrefix(err.Error(), "token::persist_secret::"), err.Error())
			}
			return
		}
		require.Equal(t, ns == "", name == "")
		require.Empty(t, validation.IsConfigMapKey(key))
		require.Positive(t, timeout)
		if name != "" {
			require.Empty(t, validation.IsDNS1123Subdomain(name))
			require.Empty(t, validation.IsDNS1123Label(ns))
		}
	})
}
