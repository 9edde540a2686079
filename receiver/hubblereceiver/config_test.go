package hubblereceiver

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	flowpb "github.com/cilium/cilium/api/v1/flow"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/confmaptest"
	"google.golang.org/protobuf/proto"

	"github.com/kestrelai/otelcol-kestrel/receiver/hubblereceiver/internal/metadata"
)

func TestLoadConfig(t *testing.T) {
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", "config.yaml"))
	require.NoError(t, err)

	custom := createDefaultConfig().(*Config)
	custom.Endpoint = "hubble-relay.kube-system.svc.cluster.local:443"
	custom.TLS.CAFile = "/var/lib/hubble-relay/tls/ca.crt"
	custom.TLS.ServerName = "ui.hubble-relay.cilium.io"
	custom.Allowlist = []map[string]any{
		{"source_pod": []any{"shop/"}, "verdict": []any{"FORWARDED", "DROPPED"}},
		{"destination_label": []any{"k8s:app=web"}},
	}
	custom.Denylist = []map[string]any{{"destination_port": []any{"53"}, "protocol": []any{"udp"}}}
	custom.Aggregation.Window = 10 * time.Second
	custom.Aggregation.MaxEntries = 5000
	custom.Reconnect.InitialInterval = 500 * time.Millisecond
	custom.Reconnect.MaxInterval = 30 * time.Second
	custom.Reconnect.Multiplier = 2
	custom.Reconnect.RandomizationFactor = 0.1
	custom.ResumeOverlap = 5 * time.Second

	disabled := createDefaultConfig().(*Config)
	disabled.Enabled = false

	tests := []struct {
		id   component.ID
		want *Config
	}{
		{id: component.NewID(metadata.Type), want: createDefaultConfig().(*Config)},
		{id: component.NewIDWithName(metadata.Type, "custom"), want: custom},
		{id: component.NewIDWithName(metadata.Type, "disabled"), want: disabled},
	}
	for _, tt := range tests {
		t.Run(tt.id.String(), func(t *testing.T) {
			sub, err := cm.Sub(tt.id.String())
			require.NoError(t, err)
			cfg := createDefaultConfig()
			require.NoError(t, sub.Unmarshal(cfg))
			require.NoError(t, confmap.Validate(cfg))
			assert.Equal(t, tt.want, cfg)
		})
	}

	// The filters reach Relay as these FlowFilters.
	allow, err := parseFilters("allowlist", custom.Allowlist)
	require.NoError(t, err)
	require.Len(t, allow, 2)
	assert.True(t, proto.Equal(&flowpb.FlowFilter{
		SourcePod: []string{"shop/"},
		Verdict:   []flowpb.Verdict{flowpb.Verdict_FORWARDED, flowpb.Verdict_DROPPED},
	}, allow[0]))
	assert.True(t, proto.Equal(&flowpb.FlowFilter{DestinationLabel: []string{"k8s:app=web"}}, allow[1]))
}

func TestDefaultConfig(t *testing.T) {
	cfg := createDefaultConfig().(*Config)
	assert.Equal(t, "hubble-relay.kube-system.svc:443", cfg.Endpoint)
	assert.False(t, cfg.TLS.Insecure, "TLS is on by default")
	assert.True(t, cfg.Enabled)
	assert.Equal(t, 30*time.Second, cfg.Aggregation.Window)
	require.NoError(t, confmap.Validate(cfg))
}

// deepFilter nests maps depth levels deep inside a filter field.
func deepFilter(depth int) map[string]any {
	var v any = "x"
	for range depth {
		v = map[string]any{"a": v}
	}
	return map[string]any{"source_workload": []any{v}}
}

func TestInvalidConfigs(t *testing.T) {
	tests := map[string]struct {
		edit func(*Config)
		want string
	}{
		"no endpoint":        {func(c *Config) { c.Endpoint = "" }, "endpoint must be set"},
		"unknown filter":     {func(c *Config) { c.Allowlist = []map[string]any{{"pod": []any{"x"}}} }, `allowlist[0]: not a Hubble FlowFilter`},
		"bad verdict":        {func(c *Config) { c.Denylist = []map[string]any{{"verdict": []any{"NOPE"}}} }, `denylist[0]: not a Hubble FlowFilter`},
		"wrong type":         {func(c *Config) { c.Allowlist = []map[string]any{{"verdict": "DROPPED"}} }, `allowlist[0]: not a Hubble FlowFilter`},
		"deeply nested":      {func(c *Config) { c.Allowlist = []map[string]any{deepFilter(10_000)} }, `allowlist[0]:`},
		"huge filter":        {func(c *Config) { c.Allowlist = []map[string]any{{"source_pod": []any{strings.Repeat("x", 70_000)}}} }, `larger than`},
		"unmarshalable":      {func(c *Config) { c.Allowlist = []map[string]any{{"source_pod": func() {}}} }, `allowlist[0]: json`},
		"zero window":        {func(c *Config) { c.Aggregation.Window = 0 }, "aggregation::window"},
		"no entries":         {func(c *Config) { c.Aggregation.MaxEntries = 0 }, "aggregation::max_entries"},
		"backoff":            {func(c *Config) { c.Reconnect.InitialInterval = 0 }, "reconnect::initial_interval"},
		"backoff max":        {func(c *Config) { c.Reconnect.MaxInterval = time.Millisecond }, "reconnect::max_interval"},
		"backoff multiplier": {func(c *Config) { c.Reconnect.Multiplier = 0.5 }, "reconnect::multiplier"},
		"backoff jitter":     {func(c *Config) { c.Reconnect.RandomizationFactor = 1 }, "reconnect::randomization_factor"},
		"negative overlap":   {func(c *Config) { c.ResumeOverlap = -time.Second }, "resume_overlap"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			cfg := createDefaultConfig().(*Config)
			tc.edit(cfg)
			err := confmap.Validate(cfg)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}
