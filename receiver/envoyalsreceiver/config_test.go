package envoyalsreceiver

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/config/configtls"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/confmaptest"

	"github.com/kestrelai/otelcol-kestrel/internal/k8sapi"
	"github.com/kestrelai/otelcol-kestrel/receiver/envoyalsreceiver/internal/metadata"
)

func TestLoadConfig(t *testing.T) {
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", "config.yaml"))
	require.NoError(t, err)

	custom := createDefaultConfig().(*Config)
	custom.NetAddr.Endpoint = "0.0.0.0:9080"
	tls := configtls.NewDefaultServerConfig()
	tls.CertFile = "/etc/kestrel/als/tls.crt"
	tls.KeyFile = "/etc/kestrel/als/tls.key"
	tls.ClientCAFile = "/etc/kestrel/als/ca.crt"
	custom.TLS = configoptional.Some(tls)
	custom.MaxRecvMsgSizeMiB = 8
	custom.MaxConcurrentStreams = 50
	custom.Headers.Request = []string{"x-request-id", "x-tenant"}
	custom.Headers.Response = []string{}
	custom.Headers.Redact = []string{"x-tenant"}
	custom.Headers.RedactContaining = []string{}
	custom.Headers.MaxValueLength = 64
	custom.Aggregation.Window = 15 * time.Second
	custom.Aggregation.MaxEntries = 20000
	custom.Kubernetes = configoptional.Some(k8sapi.Config{AuthType: k8sapi.AuthTypeKubeConfig})

	tests := []struct {
		id   component.ID
		want *Config
	}{
		{id: component.NewID(metadata.Type), want: createDefaultConfig().(*Config)},
		{id: component.NewIDWithName(metadata.Type, "custom"), want: custom},
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
}

func TestDefaultConfig(t *testing.T) {
	cfg := createDefaultConfig().(*Config)
	assert.Equal(t, "localhost:8080", cfg.NetAddr.Endpoint)
	assert.Equal(t, 4, cfg.MaxRecvMsgSizeMiB)
	assert.Equal(t, uint32(100), cfg.MaxConcurrentStreams)
	assert.Equal(t, 30*time.Second, cfg.Aggregation.Window)
	for _, h := range []string{"authorization", "cookie", "set-cookie", "proxy-authorization", "x-api-key"} {
		assert.Contains(t, cfg.Headers.Redact, h)
	}
	require.NoError(t, confmap.Validate(cfg))
}

func TestInvalidConfigs(t *testing.T) {
	tests := map[string]struct {
		edit func(*Config)
		want string
	}{
		"no endpoint":     {func(c *Config) { c.NetAddr.Endpoint = "" }, "endpoint must be set"},
		"no message size": {func(c *Config) { c.MaxRecvMsgSizeMiB = 0 }, "max_recv_msg_size_mib"},
		"no streams":      {func(c *Config) { c.MaxConcurrentStreams = 0 }, "max_concurrent_streams"},
		"no value length": {func(c *Config) { c.Headers.MaxValueLength = 0 }, "headers::max_value_length"},
		"bad header name": {func(c *Config) { c.Headers.Request = []string{"x request"} }, `headers::request: "x request"`},
		"empty redact":    {func(c *Config) { c.Headers.Redact = []string{""} }, `headers::redact: ""`},
		"pseudo header":   {func(c *Config) { c.Headers.Response = []string{":status"} }, `headers::response`},
		"zero window":     {func(c *Config) { c.Aggregation.Window = 0 }, "aggregation::window"},
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
