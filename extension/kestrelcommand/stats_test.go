package kestrelcommand

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	cloudv1 "github.com/kestrelai/otelcol-kestrel/api/cloud/v1"
	"github.com/kestrelai/otelcol-kestrel/internal/cloudconn"
	"github.com/kestrelai/otelcol-kestrel/internal/devcloud"
	"github.com/kestrelai/otelcol-kestrel/internal/testutil/cloudtest"
)

func writeCgroup(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600))
	}
}

// OperatorStats goes to the cloud every stats_interval on StreamData, with the runtime's
// figures, the container's from its cgroup, stream health and message counters.
func TestOperatorStatsEveryInterval(t *testing.T) {
	dir := t.TempDir()
	writeCgroup(t, dir, map[string]string{
		"memory.current": "123456\n",
		"memory.max":     "4194304\n",
		"cpu.max":        "200000 100000\n",
		"cpu.stat":       "usage_usec 1000\nuser_usec 800\n",
	})
	old := cgroupRoot
	t.Cleanup(func() { cgroupRoot = old }) // after the extension's shutdown, registered later
	cgroupRoot = dir

	certs := cloudtest.NewCerts(t, devcloud.CertOptions{})
	cloud := cloudtest.Start(t, devcloud.Config{CertsDir: certs})
	cfg := testConfig(t, certs, cloud.Addr())
	cfg.StatsInterval = 100 * time.Millisecond
	h := startHarness(t, cfg)
	waitSideStreamsUsable(t, h, cloud)
	got := cloud.WaitPayloads(t, cloudconn.StreamData, &cloudv1.OperatorStats{}, func(ms []proto.Message) bool { return len(ms) >= 3 })
	last := got[len(got)-1].(*cloudv1.OperatorStats)
	assert.Positive(t, last.GetMemoryAllocBytes())
	assert.Positive(t, last.GetMemorySysBytes())
	assert.Positive(t, last.GetMemoryHeapInuseBytes())
	assert.Positive(t, last.GetNumGoroutines())
	assert.Equal(t, int64(123456), last.GetMemoryUsageBytes())
	assert.Equal(t, int64(4194304), last.GetMemoryLimitBytes())
	assert.Equal(t, int64(2e9), last.GetCpuLimitNanoCores())
	assert.True(t, last.GetDataStreamHealthy())
	assert.True(t, last.GetControlStreamHealthy())
	assert.Positive(t, last.GetTotalMessagesSent(), "the snapshot commit and earlier stats were sent")
	assert.WithinDuration(t, time.Now(), last.GetTimestamp().AsTime(), 10*time.Second)
}

func TestCgroupCPUUsage(t *testing.T) {
	dir := t.TempDir()
	writeCgroup(t, dir, map[string]string{"cpu.stat": "usage_usec 1000000\n", "cpu.max": "max 100000\n", "memory.max": "max\n"})
	cg := &cgroupStats{root: dir}
	start := time.Unix(1000, 0)
	var st cloudv1.OperatorStats
	cg.fill(&st, start)
	assert.Zero(t, st.GetCpuUsageNanoCores(), "one sample gives no rate")
	assert.Zero(t, st.GetCpuLimitNanoCores(), "max: no limit")
	assert.Zero(t, st.GetMemoryLimitBytes(), "max: no limit")
	writeCgroup(t, dir, map[string]string{"cpu.stat": "usage_usec 1500000\n"})
	cg.fill(&st, start.Add(2*time.Second))
	assert.Equal(t, int64(250_000_000), st.GetCpuUsageNanoCores(), "0.5 s of CPU in 2 s is a quarter core")
}

// FuzzCgroupFiles: whatever the cgroup files hold, reading them neither panics nor
// yields negative figures.
func FuzzCgroupFiles(f *testing.F) {
	f.Add("123\n", "max 100000\n", "usage_usec 5\n")
	f.Add("-1", "100000 0", "usage_usec -3")
	f.Add("", "a b c", "usage_usec")
	f.Fuzz(func(t *testing.T, mem, cpuMax, cpuStat string) {
		dir := t.TempDir()
		writeCgroup(t, dir, map[string]string{"memory.current": mem, "memory.max": mem, "cpu.max": cpuMax, "cpu.stat": cpuStat})
		cg := &cgroupStats{root: dir}
		var st cloudv1.OperatorStats
		cg.fill(&st, time.Unix(1, 0))
		cg.fill(&st, time.Unix(2, 0))
		assert.GreaterOrEqual(t, st.GetMemoryUsageBytes(), int64(0))
		assert.GreaterOrEqual(t, st.GetCpuLimitNanoCores(), int64(0))
		assert.GreaterOrEqual(t, st.GetCpuUsageNanoCores(), int64(0))
	})
}
