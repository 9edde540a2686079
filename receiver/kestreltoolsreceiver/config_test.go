package kestreltoolsreceiver

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/confmaptest"

	"github.com/kestrelai/otelcol-kestrel/internal/hubblerelay"
	"github.com/kestrelai/otelcol-kestrel/internal/k8sapi"
	"github.com/kestrelai/otelcol-kestrel/receiver/kestreltoolsreceiver/internal/changerequest"
	"github.com/kestrelai/otelcol-kestrel/receiver/kestreltoolsreceiver/internal/metadata"
)

func TestLoadConfig(t *testing.T) {
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", "config.yaml"))
	require.NoError(t, err)
	relay := hubblerelay.NewDefaultClientConfig()
	relay.Endpoint = "hubble-relay.kube-system.svc:80"
	relay.TLS.Insecure = true
	custom := &Config{
		Connection: component.MustNewIDWithName("kestrel_command", "secondary"),
		Kubernetes: k8sapi.Config{AuthType: k8sapi.AuthTypeKubeConfig, Context: "staging"},
		Identity:   IdentityConfig{Impersonate: true, ServiceAccount: "ai-reader", Namespace: "kestrel"},
		Limits:     LimitsConfig{MaxConcurrent: 2, MaxWaiting: 4, Wait: time.Second, MaxReadBytes: 16 << 20},
		KubernetesAPI: KubernetesAPIConfig{Enabled: true, DefaultTimeout: 10 * time.Second, MaxTimeout: 20 * time.Second,
			MaxResultBytes: 1 << 20, MaxResponseBytes: 2 << 20},
		Shell: ShellConfig{Enabled: true, Allow: []string{"kubectl get", "kubectl describe", "hubble observe"},
			DefaultTimeout: 15 * time.Second, MaxTimeout: 30 * time.Second, MaxCommandBytes: 1024, MaxOutputBytes: 1 << 20,
			HubbleRelay: configoptional.Some(relay)},
		Changes: ChangesConfig{ServiceAccount: "ai-changes", Namespace: "kestrel-changes", MaxManifestBytes: 64 << 10,
			DryRun: DryRunConfig{Enabled: true, DefaultTimeout: 5 * time.Second, MaxTimeout: 10 * time.Second},
			Apply: ApplyConfig{Enabled: true, Expiry: 2 * time.Hour, Timeout: 10 * time.Second, AutoApprove: []changerequest.Rule{
				{Kinds: []string{"NetworkPolicy", "cilium.io/CiliumNetworkPolicy"}, Namespaces: []string{"shop"}},
				{Operations: []string{"FLUX_RECONCILE", "ROLLOUTS_PAUSE"}}}}},
		Restart: RestartConfig{Mode: RestartRollout, Deployment: "otelcol-kestrel", MaxDelay: time.Minute},
		Integrations: IntegrationsConfig{DefaultTimeout: 10 * time.Second, MaxTimeout: 20 * time.Second, MaxResponseBytes: 1 << 20,
			MaxRequestBytes: 64 << 10, ArgoCD: ArgoCDConfig{Enabled: true, Namespace: "argocd"}, Rollouts: SwitchConfig{Enabled: true},
			Flux: SwitchConfig{Enabled: true}, Datadog: DatadogConfig{Enabled: true, Site: "datadoghq.eu", MonitorPollInterval: 30 * time.Second,
				Secret: SecretRef{Namespace: "monitoring", Name: "datadog-keys", APIKey: "api", AppKey: "app"}}},
	}
	ownIdentity := createDefaultConfig().(*Config)
	ownIdentity.Identity.Impersonate = false
	tests := []struct {
		id      component.ID
		want    *Config
		wantErr string
	}{
		{id: component.NewID(metadata.Type), want: createDefaultConfig().(*Config)},
		{id: component.NewIDWithName(metadata.Type, "custom"), want: custom},
		{id: component.NewIDWithName(metadata.Type, "own_identity"), want: ownIdentity},
		{id: component.NewIDWithName(metadata.Type, "unknown_command"), wantErr: `shell::allow: "kubectl delete" is not a command this collector implements`},
		{id: component.NewIDWithName(metadata.Type, "bad_account"), wantErr: `identity::service_account "Not_A_Name"`},
		{id: component.NewIDWithName(metadata.Type, "timeout_below_default"), wantErr: "kubernetes_api::max_timeout (5s) must not be less than kubernetes_api::default_timeout (30s)"},
		{id: component.NewIDWithName(metadata.Type, "over_message_limit"), wantErr: "kubernetes_api::max_result_bytes must be between 4096 and 10420224"},
		{id: component.NewIDWithName(metadata.Type, "result_over_response"), wantErr: "kubernetes_api::max_result_bytes (4194304) must not exceed kubernetes_api::max_response_bytes (1048576)"},
		{id: component.NewIDWithName(metadata.Type, "no_slots"), wantErr: "limits::max_concurrent must be at least 1"},
		{id: component.NewIDWithName(metadata.Type, "relay_without_endpoint"), wantErr: "shell::hubble_relay::endpoint must be set"},
		{id: component.NewIDWithName(metadata.Type, "restart_mode"), wantErr: `restart::mode must be empty (disabled), "rollout" or "exit", got "reboot"`},
		{id: component.NewIDWithName(metadata.Type, "auto_approve_wildcard"), wantErr: `changes::apply::auto_approve[0]::kinds: "*" is not a kind`},
		{id: component.NewIDWithName(metadata.Type, "expiry_too_long"), wantErr: "changes::apply::expiry must be between 1s and 168h, got 720h0m0s"},
		{id: component.NewIDWithName(metadata.Type, "rollout_without_deployment"), wantErr: `restart::deployment ""`},
		{id: component.NewIDWithName(metadata.Type, "auto_approve_read"), wantErr: `changes::apply::auto_approve[0]::operations: "FLUX_LIST" is not an integration write`},
		{id: component.NewIDWithName(metadata.Type, "datadog_http"), wantErr: "plain http only to a loopback address"},
		{id: component.NewIDWithName(metadata.Type, "integrations_request_limit"), wantErr: "integrations::max_request_bytes must be between 1024 and 4194304, got 10"},
	}
	for _, tt := range tests {
		t.Run(tt.id.String(), func(t *testing.T) {
			cfg := createDefaultConfig()
			sub, err := cm.Sub(tt.id.String())
			require.NoError(t, err)
			require.NoError(t, sub.Unmarshal(cfg))
			err = confmap.Validate(cfg)
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, cfg)
		})
	}
}

// The defaults are the safe ones: impersonation of kestrel-ai-reader, both tools on, every
// built-in command allowed, no Hubble Relay, one minute at most.
func TestDefaults(t *testing.T) {
	cfg := createDefaultConfig().(*Config)
	require.NoError(t, cfg.Validate())
	assert.True(t, cfg.Identity.Impersonate)
	assert.Equal(t, "kestrel-ai-reader", cfg.Identity.ServiceAccount)
	assert.False(t, cfg.Shell.HubbleRelay.HasValue())
	assert.Equal(t, time.Minute, cfg.KubernetesAPI.MaxTimeout)
	assert.Equal(t, time.Minute, cfg.Shell.MaxTimeout)
	assert.True(t, cfg.Changes.DryRun.Enabled, "a dry-run changes nothing")
	assert.False(t, cfg.Changes.Apply.Enabled, "applies are off until an administrator enables them")
	assert.Empty(t, cfg.Changes.Apply.AutoApprove)
	assert.Empty(t, cfg.Restart.Mode, "restarts are off")
	assert.Less(t, cfg.Limits.MaxConcurrent+cfg.Limits.MaxWaiting, 16,
		"tool requests never take all of kestrel_command's default 16 handler slots")
}

func TestIdentity(t *testing.T) {
	cfg := createDefaultConfig().(*Config)
	cfg.Identity.Namespace = "kestrel"
	id, err := cfg.identity()
	require.NoError(t, err)
	assert.Equal(t, "system:serviceaccount:kestrel:kestrel-ai-reader", id)
	cfg.Identity.Namespace = ""
	t.Setenv("POD_NAMESPACE", "ops")
	id, err = cfg.identity()
	require.NoError(t, err)
	assert.Equal(t, "system:serviceaccount:ops:kestrel-ai-reader", id)
	cfg.Identity.Impersonate = false
	id, err = cfg.identity()
	require.NoError(t, err)
	assert.Empty(t, id)
}
