package metricsstoreprocessor

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/confmaptest"

	"github.com/kestrelai/otelcol-kestrel/internal/k8sapi"
	"github.com/kestrelai/otelcol-kestrel/processor/metricsstoreprocessor/internal/metadata"
)

func TestLoadConfig(t *testing.T) {
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", "config.yaml"))
	require.NoError(t, err)
	tests := []struct {
		id      component.ID
		want    *Config
		wantErr string
	}{
		{id: component.NewID(metadata.Type), want: createDefaultConfig().(*Config)},
		{id: component.NewIDWithName(metadata.Type, "custom"), want: &Config{
			Retention: 10 * time.Minute, MaxSeries: 5000, RingSize: 120, MaxBytes: 16 << 20,
			EvictionInterval: 10 * time.Second, MaxResponseBytes: 4 << 20,
			Connection:         component.MustNewIDWithName("kestrel_command", "secondary"),
			ResourceAttributes: []string{"service.name"},
			Kubernetes:         configoptional.Some(k8sapi.Config{AuthType: k8sapi.AuthTypeKubeConfig, Context: "staging"}),
		}},
		{id: component.NewIDWithName(metadata.Type, "zero_retention"), wantErr: "retention must be positive"},
		{id: component.NewIDWithName(metadata.Type, "no_series"), wantErr: "max_series must be positive"},
		{id: component.NewIDWithName(metadata.Type, "huge_ring"), wantErr: "ring_size must be between 1 and 10000"},
		{id: component.NewIDWithName(metadata.Type, "tiny_budget"), wantErr: "max_bytes must be at least 1 MiB"},
		{id: component.NewIDWithName(metadata.Type, "no_eviction"), wantErr: "eviction_interval must be positive"},
		{id: component.NewIDWithName(metadata.Type, "response_over_limit"), wantErr: "max_response_bytes must be between 16384 and 10484736"},
		{id: component.NewIDWithName(metadata.Type, "response_too_small"), wantErr: "max_response_bytes must be between"},
		{id: component.NewIDWithName(metadata.Type, "bad_auth_type"), wantErr: `auth_type must be "serviceAccount" or "kubeConfig", got "token"`},
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
			require.Equal(t, tt.want, cfg)
		})
	}
}

func TestValidateRejectsMissingConnection(t *testing.T) {
	cfg := createDefaultConfig().(*Config)
	cfg.Connection = component.ID{}
	require.ErrorContains(t, cfg.Validate(), "connection must name an extension")
}
