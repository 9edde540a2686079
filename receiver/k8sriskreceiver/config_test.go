package k8sriskreceiver

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/confmaptest"

	"github.com/kestrelai/otelcol-kestrel/internal/k8sapi"
	"github.com/kestrelai/otelcol-kestrel/receiver/k8sriskreceiver/internal/metadata"
)

func TestLoadConfig(t *testing.T) {
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", "config.yaml"))
	require.NoError(t, err)

	all := createDefaultConfig().(*Config)
	all.AuthType = k8sapi.AuthTypeKubeConfig
	all.Context = "staging"
	all.Namespaces = NamespacesConfig{Include: []string{"shop", "payments"}, Exclude: []string{"payments-sandbox"}}
	all.Interval = 12 * time.Hour
	all.Debounce = 30 * time.Second
	all.MaxObjectsPerSecond = 100
	all.Checks.Exclude = []string{"sustainability.*", "performance-efficiency.priority-class"}
	all.AttackChains = AttackChainsConfig{FlowWindow: 6 * time.Hour, Interval: 5 * time.Minute}
	all.PolicyReports = PolicyReportsConfig{Enabled: true, MaxResults: 200, Interval: time.Minute}

	for _, tt := range []struct {
		id   component.ID
		want *Config
	}{
		{component.NewID(metadata.Type), createDefaultConfig().(*Config)},
		{component.NewIDWithName(metadata.Type, "all"), all},
	} {
		t.Run(tt.id.String(), func(t *testing.T) {
			sub, err := cm.Sub(tt.id.String())
			require.NoError(t, err)
			cfg := createDefaultConfig()
			require.NoError(t, sub.Unmarshal(cfg))
			require.NoError(t, confmap.Validate(cfg))
			assert.Equal(t, tt.want, cfg)
		})
	}
	excluded := all.enabledChecks()
	for _, c := range excluded {
		assert.NotEqual(t, "sustainability", c.Pillar)
		assert.NotEqual(t, "performance-efficiency.priority-class", c.ID)
	}
}

func TestConfigErrors(t *testing.T) {
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", "config.yaml"))
	require.NoError(t, err)
	sub, err := cm.Sub(component.NewIDWithName(metadata.Type, "bad").String())
	require.NoError(t, err)
	cfg := createDefaultConfig()
	require.NoError(t, sub.Unmarshal(cfg))
	err = confmap.Validate(cfg)
	require.Error(t, err)
	for _, want := range []string{
		`namespaces::include: "Shop" is not a namespace name`,
		`namespaces: "shop" is both included and excluded`,
		"interval must be at least 1m, got 10s",
		"debounce must be between 0 and interval (10s), got -1s",
		"max_objects_per_second must be positive, got 0",
		`checks::exclude: "security.no-such-check" names no check`,
		"attack_chains::flow_window must be positive and at most 24h0m0s",
		"attack_chains::interval must be at least 1s, got 0s",
		"policy_reports::max_results must be between 1 and 1000",
	} {
		assert.Contains(t, err.Error(), want)
	}
	assert.Len(t, strings.Split(err.Error(), "\n"), 9, err.Error())
}
