package k8sapi

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestValidate(t *testing.T) {
	for name, tc := range map[string]struct {
		cfg     Config
		wantErr string
	}{
		"service account":          {cfg: Default()},
		"kubeconfig with context":  {cfg: Config{AuthType: AuthTypeKubeConfig, Context: "dev"}},
		"context without kubeconf": {cfg: Config{AuthType: AuthTypeServiceAccount, Context: "dev"}, wantErr: `"context" applies only to auth_type kubeConfig`},
		"unknown":                  {cfg: Config{AuthType: "tls"}, wantErr: `auth_type must be "serviceAccount" or "kubeConfig", got "tls"`},
	} {
		t.Run(name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if tc.wantErr == "" {
				require.NoError(t, err)
				return
			}
			require.EqualError(t, err, tc.wantErr)
		})
	}
}

func TestRestConfig(t *testing.T) {
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	require.NoError(t, os.WriteFile(kubeconfig, []byte(`apiVersion: v1
kind: Config
clusters:
- {name: a, cluster: {server: "https://127.0.0.1:6443"}}
- {name: b, cluster: {server: "https://127.0.0.2:6443"}}
users:
- {name: u, user: {token: t}}
contexts:
- {name: one, context: {cluster: a, user: u}}
- {name: two, context: {cluster: b, user: u}}
current-context: one
`), 0o600))
	t.Setenv("KUBECONFIG", kubeconfig)

	cfg := Config{AuthType: AuthTypeKubeConfig}
	rc, err := cfg.RestConfig()
	require.NoError(t, err)
	require.Equal(t, "https://127.0.0.1:6443", rc.Host)

	cfg.Context = "two"
	rc, err = cfg.RestConfig()
	require.NoError(t, err)
	require.Equal(t, "https://127.0.0.2:6443", rc.Host)

	cfg.Context = "three"
	_, err = cfg.RestConfig()
	require.ErrorContains(t, err, `auth_type kubeConfig`)
	require.ErrorContains(t, err, `"three"`)

	// Outside a cluster there is no service account to use.
	t.Setenv("KUBERNETES_SERVICE_HOST", "")
	sa := Default()
	_, err = sa.RestConfig()
	require.ErrorContains(t, err, "auth_type serviceAccount")
}
