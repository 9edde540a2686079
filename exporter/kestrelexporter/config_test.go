package kestrelexporter

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/config/configretry"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/confmaptest"
	"go.opentelemetry.io/collector/exporter/exporterhelper"

	"github.com/kestrelai/otelcol-kestrel/exporter/kestrelexporter/internal/metadata"
)

// The default queue is bounded in bytes, refuses when full instead of blocking (the sender
// gets a retryable error) and batches in its consumers, replacing the batch processor.
func TestDefaultQueue(t *testing.T) {
	q := createDefaultConfig().(*Config).QueueConfig.Get()
	require.NotNil(t, q)
	assert.Equal(t, exporterhelper.RequestSizerTypeBytes, q.Sizer)
	assert.Equal(t, int64(64<<20), q.QueueSize)
	assert.False(t, q.BlockOnOverflow)
	require.True(t, q.Batch.HasValue())
	assert.Equal(t, exporterhelper.RequestSizerTypeBytes, q.Batch.Get().Sizer)
	assert.Equal(t, int64(4<<20), q.Batch.Get().MaxSize)
	require.NoError(t, confmap.Validate(createDefaultConfig()))
}

func TestLoadConfig(t *testing.T) {
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", "config.yaml"))
	require.NoError(t, err)

	storage := component.MustNewID("file_storage")
	custom := createDefaultConfig().(*Config)
	custom.Connection = component.MustNewIDWithName("kestrel_command", "eu")
	custom.TimeoutConfig.Timeout = 10 * time.Second
	custom.InitialSnapshotTimeout = 0
	queue := defaultQueueConfig()
	queue.StorageID = &storage
	queue.QueueSize = 512 << 20
	queue.NumConsumers = 2
	custom.QueueConfig = configoptional.Some(queue)
	retry := configretry.NewDefaultBackOffConfig()
	retry.InitialInterval = time.Second
	retry.MaxInterval = time.Minute
	retry.MaxElapsedTime = 0
	custom.RetryConfig = retry

	noQueue := createDefaultConfig().(*Config)
	noQueue.QueueConfig = configoptional.None[exporterhelper.QueueBatchConfig]()

	tests := []struct {
		id   component.ID
		want *Config
	}{
		{id: component.NewID(metadata.Type), want: createDefaultConfig().(*Config)},
		{id: component.NewIDWithName(metadata.Type, "custom"), want: custom},
		{id: component.NewIDWithName(metadata.Type, "no_queue"), want: noQueue},
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
	assert.Equal(t, component.MustNewID("kestrel_command"), cfg.Connection)
	assert.True(t, cfg.QueueConfig.HasValue(), "the sending queue is on by default")
	assert.True(t, cfg.RetryConfig.Enabled)
	assert.Equal(t, 5*time.Second, cfg.TimeoutConfig.Timeout)
	assert.Equal(t, 2*time.Minute, cfg.InitialSnapshotTimeout)
	require.NoError(t, confmap.Validate(cfg))
}

func TestInvalidConfigs(t *testing.T) {
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", "invalid_configs.yaml"))
	require.NoError(t, err)
	tests := map[string]string{
		"empty_connection":             "id must not be empty",
		"negative_timeout":             "timeout value must be greater than or equal to 0",
		"zero_queue_size":              "`queue_size` must be positive",
		"wait_for_result_with_storage": "`wait_for_result` is not supported",
		"negative_retry_multiplier":    "multiplier value must be greater than or equal to 0",
		"negative_snapshot_timeout":    "initial_snapshot_timeout must not be negative",
	}
	for name, wantErr := range tests {
		t.Run(name, func(t *testing.T) {
			sub, err := cm.Sub(name)
			require.NoError(t, err)
			cfg := createDefaultConfig()
			if err = sub.Unmarshal(cfg); err == nil {
				err = confmap.Validate(cfg)
			}
			require.ErrorContains(t, err, wantErr)
		})
	}
	require.Len(t, cm.ToStringMap(), len(tests), "every case in invalid_configs.yaml is checked")

	t.Run("zero connection ID", func(t *testing.T) {
		cfg := createDefaultConfig().(*Config)
		cfg.Connection = component.ID{}
		require.ErrorContains(t, confmap.Validate(cfg), `"connection" must name the kestrel_command extension`)
	})
}
