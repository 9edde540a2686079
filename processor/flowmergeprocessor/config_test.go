package flowmergeprocessor

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/confmaptest"

	"github.com/kestrelai/otelcol-kestrel/internal/flowagg"
	"github.com/kestrelai/otelcol-kestrel/processor/flowmergeprocessor/internal/metadata"
)

func TestLoadConfig(t *testing.T) {
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", "config.yaml"))
	require.NoError(t, err)
	tests := []struct {
		id      component.ID
		want    *Config
		wantErr string
	}{
		{id: component.NewID(metadata.Type), want: &Config{Config: flowagg.NewDefaultConfig()}},
		{id: component.NewIDWithName(metadata.Type, "custom"), want: &Config{Config: flowagg.Config{Window: 10 * time.Second, MaxEntries: 5000}}},
		{id: component.NewIDWithName(metadata.Type, "unmerged"), want: &Config{Config: flowagg.Config{Window: 0, MaxEntries: flowagg.NewDefaultConfig().MaxEntries}}},
		{id: component.NewIDWithName(metadata.Type, "tiny_window"), wantErr: "window must be 0 (no merging) or at least 10ms, got 1ms"},
		{id: component.NewIDWithName(metadata.Type, "no_entries"), wantErr: "max_entries must be positive, got 0"},
		{id: component.NewIDWithName(metadata.Type, "unknown_key"), wantErr: "windw"},
	}
	for _, tt := range tests {
		t.Run(tt.id.String(), func(t *testing.T) {
			cfg := createDefaultConfig()
			sub, err := cm.Sub(tt.id.String())
			require.NoError(t, err)
			err = sub.Unmarshal(cfg)
			if err == nil {
				err = confmap.Validate(cfg)
			}
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, cfg)
		})
	}
}
