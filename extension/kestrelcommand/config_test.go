package kestrelcommand

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/configgrpc"
	"go.opentelemetry.io/collector/config/configopaque"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/confmaptest"
	"go.opentelemetry.io/collector/extension/extensiontest"

	"github.com/kestrelai/otelcol-kestrel/extension/kestrelcommand/internal/metadata"
	"github.com/kestrelai/otelcol-kestrel/internal/cloudconn"
	"github.com/kestrelai/otelcol-kestrel/internal/k8sapi"
)

func TestLoadConfig(t *testing.T) {
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", "config.yaml"))
	require.NoError(t, err)

	minimal := createDefaultConfig().(*Config)
	minimal.Endpoint = "grpc.platform.usekestrel.ai:443"
	minimal.TLS.CAFile = "testdata/client.crt"
	minimal.TLS.CertFile = "testdata/client.crt"
	minimal.TLS.KeyFile = "testdata/client.key"

	custom := createDefaultConfig().(*Config)
	custom.Endpoint = "kestrel.example.com:50051"
	custom.TLS.CAFile = "testdata/client.crt"
	custom.TLS.CertFile = "testdata/client.crt"
	custom.TLS.KeyFile = "testdata/client.key"
	custom.TLS.ServerName = "kestrel.example.com"
	custom.TLS.MinVersion = "1.3"
	custom.TLS.IncludeSystemCACertsPool = true
	custom.Keepalive = configoptional.Some(configgrpc.KeepaliveClientConfig{Time: time.Minute, Timeout: 10 * time.Second})
	custom.Headers = configopaque.MapList{{Name: "x-cluster", Value: "prod-eu"}}
	custom.Token = TokenConfig{File: "/var/run/kestrel/token", EnvVar: "KESTREL_TOKEN", PersistFile: "/var/lib/kestrel/token", RenewAt: 0.5,
		PersistSecret: TokenSecretConfig{SecretRef: SecretRef{Namespace: "kestrel", Name: "kestrel-token", Timeout: 3 * time.Second}, Key: "jwt"}}
	custom.Reconnect = ReconnectConfig{InitialInterval: 2 * time.Second, Multiplier: 2, MaxInterval: 30 * time.Second, RandomizationFactor: 0.1, ResetAfter: 5 * time.Minute}
	custom.MaxMessageSizeMiB = 16
	custom.MaxConcurrentRequests = 4
	custom.CertificateRenewal = CertificateRenewalConfig{MaxClockSkew: time.Minute, Secret: SecretConfig{
		SecretRef: SecretRef{Namespace: "kestrel", Name: "kestrel-client-tls", Timeout: 5 * time.Second}, CertKey: "client.crt", KeyKey: "client.key"}}
	custom.Kubernetes = k8sapi.Config{AuthType: k8sapi.AuthTypeKubeConfig, Context: "staging"}
	custom.StallTimeout = 10 * time.Second
	custom.StatsInterval = 0
	custom.SelfLogs = SelfLogsConfig{Enabled: true, RatePerSecond: 2.5, Burst: 20, MaxBuffered: 200, FlushInterval: time.Second,
		PodName: "kestrel-operator-0", Namespace: "kestrel-ai", PodUID: "1f0c", NodeName: "node-a", ContainerName: "collector"}

	for _, tt := range []struct {
		id       component.ID
		expected *Config
	}{
		{component.NewID(metadata.Type), minimal},
		{component.NewIDWithName(metadata.Type, "custom"), custom},
	} {
		t.Run(tt.id.String(), func(t *testing.T) {
			cfg := createDefaultConfig()
			sub, err := cm.Sub(tt.id.String())
			require.NoError(t, err)
			require.NoError(t, sub.Unmarshal(cfg))
			require.NoError(t, confmap.Validate(cfg))
			assert.Equal(t, tt.expected, cfg)
		})
	}
}

func TestDefaultConfig(t *testing.T) {
	cfg := createDefaultConfig().(*Config)
	assert.Equal(t, "1.2", cfg.TLS.MinVersion)
	assert.Equal(t, "pick_first", cfg.BalancerName)
	ka := cfg.Keepalive.Get()
	assert.Equal(t, 5*time.Minute, ka.Time)
	assert.Equal(t, 30*time.Second, ka.Timeout)
	assert.True(t, ka.PermitWithoutStream)
	assert.Equal(t, "AUTH_TOKEN", cfg.Token.EnvVar)
	assert.InDelta(t, 0.8, cfg.Token.RenewAt, 0)
	assert.Equal(t, ReconnectConfig{InitialInterval: time.Second, Multiplier: 1.5, MaxInterval: 5 * time.Second, RandomizationFactor: 0.2, ResetAfter: time.Minute}, cfg.Reconnect)
	assert.Equal(t, 30*time.Second, cfg.StallTimeout)
	assert.Equal(t, time.Minute, cfg.StatsInterval)
	assert.Equal(t, SelfLogsConfig{Enabled: true, RatePerSecond: 10, Burst: 100, MaxBuffered: 1000, FlushInterval: 5 * time.Second,
		ContainerName: "otelcol-kestrel"}, cfg.SelfLogs)
	assert.Equal(t, 10, cfg.MaxMessageSizeMiB)
	assert.Equal(t, 16, cfg.MaxConcurrentRequests)
	// Without endpoint and client certificate the defaults alone are not usable.
	err := confmap.Validate(cfg)
	require.ErrorContains(t, err, "endpoint must be set")
	require.ErrorContains(t, err, "tls::cert_file")
}

func TestInvalidConfigs(t *testing.T) {
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", "invalid_configs.yaml"))
	require.NoError(t, err)
	cases := cm.ToStringMap()
	require.NotEmpty(t, cases)
	for name := range cases {
		t.Run(name, func(t *testing.T) {
			c, err := cm.Sub(name)
			require.NoError(t, err)
			sub, err := c.Sub("config")
			require.NoError(t, err)
			cfg := createDefaultConfig()
			require.NoError(t, sub.Unmarshal(cfg))
			want, ok := c.Get("error").(string)
			require.True(t, ok, "case needs an error text")
			require.ErrorContains(t, confmap.Validate(cfg), want)
		})
	}
}

func TestFactoryCreatesAConnectionProvider(t *testing.T) {
	cfg := testConfig(t, t.TempDir(), "127.0.0.1:4317")
	ext, err := NewFactory().Create(context.Background(), extensiontest.NewNopSettings(metadata.Type), cfg)
	require.NoError(t, err)
	p, ok := ext.(cloudconn.Provider)
	require.True(t, ok)
	assert.Equal(t, cloudconn.Disconnected, p.Connection().State())
	require.NoError(t, ext.Shutdown(context.Background()))
}
