package kestreltoolsreceiver // import "github.com/kestrelai/otelcol-kestrel/receiver/kestreltoolsreceiver"

import (
	"context"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/receiver"

	"github.com/kestrelai/otelcol-kestrel/internal/hubblerelay"
	"github.com/kestrelai/otelcol-kestrel/internal/k8sapi"
	"github.com/kestrelai/otelcol-kestrel/receiver/kestreltoolsreceiver/internal/metadata"
	"github.com/kestrelai/otelcol-kestrel/receiver/kestreltoolsreceiver/internal/shell"
)

const mib = 1 << 20

// DefaultServiceAccount is the ServiceAccount the cloud's reads impersonate by default.
const DefaultServiceAccount = "kestrel-ai-reader"

// DefaultChangesServiceAccount is the ServiceAccount dry-runs and applies impersonate.
const DefaultChangesServiceAccount = "kestrel-ai-changes"

// NewFactory returns the factory of the kestrel_tools receiver.
func NewFactory() receiver.Factory {
	return receiver.NewFactory(
		metadata.Type,
		createDefaultConfig,
		receiver.WithLogs(createLogs, metadata.LogsStability),
	)
}

func createDefaultConfig() component.Config {
	return &Config{
		Connection: component.MustNewID("kestrel_command"),
		Kubernetes: k8sapi.Default(),
		Identity:   IdentityConfig{Impersonate: true, ServiceAccount: DefaultServiceAccount},
		Limits: LimitsConfig{
			MaxConcurrent: 4,
			MaxWaiting:    8,
			Wait:          2 * time.Second,
			MaxReadBytes:  64 * mib,
		},
		KubernetesAPI: KubernetesAPIConfig{
			Enabled:          true,
			DefaultTimeout:   30 * time.Second,
			MaxTimeout:       60 * time.Second,
			MaxResultBytes:   8 * mib,
			MaxResponseBytes: 8 * mib,
		},
		Shell: ShellConfig{
			Enabled:         true,
			Allow:           shell.Verbs(),
			DefaultTimeout:  60 * time.Second,
			MaxTimeout:      60 * time.Second,
			MaxCommandBytes: 16 << 10,
			MaxOutputBytes:  8 * mib,
			// Off unless the section is present; then the hubble receiver's defaults.
			HubbleRelay: configoptional.Default(hubblerelay.NewDefaultClientConfig()),
		},
		Changes: ChangesConfig{
			ServiceAccount:   DefaultChangesServiceAccount,
			MaxManifestBytes: mib,
			DryRun:           DryRunConfig{Enabled: true, DefaultTimeout: 30 * time.Second, MaxTimeout: 60 * time.Second},
			Apply:            ApplyConfig{Expiry: 24 * time.Hour, Timeout: 30 * time.Second},
		},
		Restart: RestartConfig{MaxDelay: 5 * time.Minute},
		Integrations: IntegrationsConfig{
			DefaultTimeout:   30 * time.Second,
			MaxTimeout:       60 * time.Second,
			MaxResponseBytes: 8 * mib,
			MaxRequestBytes:  256 << 10,
			ArgoCD:           ArgoCDConfig{Enabled: true},
			Rollouts:         SwitchConfig{Enabled: true},
			Flux:             SwitchConfig{Enabled: true},
			Karpenter:        SwitchConfig{Enabled: true},
			Datadog: DatadogConfig{Secret: SecretRef{Name: "datadog", APIKey: "api-key", AppKey: "app-key"},
				Site: "datadoghq.com", MonitorPollInterval: time.Minute},
		},
	}
}

func createLogs(_ context.Context, set receiver.Settings, cfg component.Config, next consumer.Logs) (receiver.Logs, error) {
	return newReceiver(set, cfg.(*Config), next)
}
