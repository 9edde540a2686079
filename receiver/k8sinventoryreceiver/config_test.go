package k8sinventoryreceiver

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

	"github.com/kestrelai/otelcol-kestrel/internal/k8sapi"
	"github.com/kestrelai/otelcol-kestrel/receiver/k8sinventoryreceiver/internal/metadata"
)

func TestLoadConfig(t *testing.T) {
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", "config.yaml"))
	require.NoError(t, err)

	all := createDefaultConfig().(*Config)
	all.AuthType = k8sapi.AuthTypeKubeConfig
	all.Context = "staging"
	all.Namespaces.Exclude = []string{"kube-system", "kube-public"}
	all.EventTypes = []string{"Normal", "Warning"}
	all.LeaderElection = configoptional.Some(LeaderElectionConfig{
		LeaseName: "kestrel-inventory", LeaseNamespace: "kestrel",
		LeaseDuration: 30 * time.Second, RenewDeadline: 20 * time.Second, RetryPeriod: 5 * time.Second,
	})

	include := createDefaultConfig().(*Config)
	include.Namespaces.Include = []string{"shop", "payments"}
	include.EventTypes = []string{}
	defaultLease := LeaderElectionConfig{LeaseName: "k8s-inventory", LeaseDuration: 15 * time.Second, RenewDeadline: 10 * time.Second, RetryPeriod: 2 * time.Second}
	include.LeaderElection = configoptional.Some(defaultLease)

	// enabled: false drops the section, whatever else it sets.
	off := createDefaultConfig().(*Config)
	off.LeaderElection = configoptional.None[LeaderElectionConfig]()

	tests := []struct {
		id   component.ID
		want *Config
	}{
		{component.NewID(metadata.Type), createDefaultConfig().(*Config)},
		{component.NewIDWithName(metadata.Type, "all"), all},
		{component.NewIDWithName(metadata.Type, "include"), include},
		{component.NewIDWithName(metadata.Type, "leader_election_off"), off},
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
	def := createDefaultConfig().(*Config)
	assert.False(t, def.LeaderElection.HasValue(), "leader election is off by default")
	assert.Equal(t, []string{"Warning"}, def.EventTypes)
}

func TestInvalidConfigs(t *testing.T) {
	tests := map[string]struct {
		mutate func(*Config)
		err    string
	}{
		"auth type":            {func(c *Config) { c.AuthType = "tls" }, `auth_type must be "serviceAccount" or "kubeConfig", got "tls"`},
		"context without file": {func(c *Config) { c.Context = "x" }, `"context" applies only to auth_type kubeConfig`},
		"include and exclude": {func(c *Config) {
			c.Namespaces.Include, c.Namespaces.Exclude = []string{"a"}, []string{"b"}
		}, "set include or exclude, not both"},
		"bad namespace": {func(c *Config) { c.Namespaces.Exclude = []string{"Kube_System"} }, `namespaces::exclude: "Kube_System" is not a namespace name`},
		"duplicate":     {func(c *Config) { c.Namespaces.Include = []string{"a", "a"} }, `namespaces::include: "a" is listed twice`},
		"event type":    {func(c *Config) { c.EventTypes = []string{"Error"} }, `event_types: "Error" is not an Event type`},
		"lease name": {func(c *Config) {
			c.LeaderElection.GetOrInsertDefault().LeaseName = "Not Valid"
		}, `leader_election::lease_name: "Not Valid" is not a valid name`},
		"renew deadline": {func(c *Config) {
			le := c.LeaderElection.GetOrInsertDefault()
			le.RetryPeriod, le.RenewDeadline = 10*time.Second, 11*time.Second
		}, "renew_deadline (11s) must be greater than 1.2 times retry_period (10s)"},
		"lease duration": {func(c *Config) {
			le := c.LeaderElection.GetOrInsertDefault()
			le.LeaseDuration = le.RenewDeadline
		}, "lease_duration (10s) must be greater than renew_deadline (10s)"},
		"retry period": {func(c *Config) { c.LeaderElection.GetOrInsertDefault().RetryPeriod = 0 }, "retry_period must be positive"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			cfg := createDefaultConfig().(*Config)
			tt.mutate(cfg)
			assert.ErrorContains(t, confmap.Validate(cfg), tt.err)
		})
	}
}
