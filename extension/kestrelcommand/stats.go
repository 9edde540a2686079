package kestrelcommand // import "github.com/kestrelai/otelcol-kestrel/extension/kestrelcommand"

import (
	"bufio"
	"bytes"
	"context"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"
	"google.golang.org/protobuf/types/known/timestamppb"

	cloudv1 "github.com/kestrelai/otelcol-kestrel/api/cloud/v1"
	"github.com/kestrelai/otelcol-kestrel/internal/cloudconn"
)

// cgroupRoot is where the container's cgroup v2 files are (the pod's own cgroup, as
// Kubernetes mounts it). Without them the container figures stay 0.
var cgroupRoot = "/sys/fs/cgroup"

// cgroupStats reads the container's CPU and memory usage and limits (cgroup v2).
type cgroupStats struct {
	root     string
	lastCPU  int64 // usage_usec at lastTime
	lastTime time.Time
}

// fill sets the container fields of st; what cannot be read stays 0.
func (c *cgroupStats) fill(st *cloudv1.OperatorStats, now time.Time) {
	st.MemoryUsageBytes = readInt(filepath.Join(c.root, "memory.current"))
	st.MemoryLimitBytes = readInt(filepath.Join(c.root, "memory.max")) // "max" (no limit) reads as 0
	if quota, period, ok := cpuMax(filepath.Join(c.root, "cpu.max")); ok {
		st.CpuLimitNanoCores = nanoCores(float64(quota) / float64(period))
	}
	usage, ok := cpuUsageUsec(filepath.Join(c.root, "cpu.stat"))
	if !ok {
		return
	}
	if !c.lastTime.IsZero() && usage >= c.lastCPU {
		if wall := now.Sub(c.lastTime); wall > 0 {
			// usec of CPU per ns of wall time, scaled to nano-cores (1e9 = one core).
			st.CpuUsageNanoCores = nanoCores(float64(usage-c.lastCPU) * 1e3 / float64(wall))
		}
	}
	c.lastCPU, c.lastTime = usage, now
}

// nanoCores converts cores to nano-cores, clamped to int64.
func nanoCores(cores float64) int64 {
	if v := cores * 1e9; v < math.MaxInt64 {
		return int64(v)
	}
	return math.MaxInt64
}

func readInt(path string) int64 {
	b, err := os.ReadFile(filepath.Clean(path))
	if err != nil {
		return 0
	}
	v, err := strconv.ParseInt(string(bytes.TrimSpace(b)), 10, 64)
	if err != nil || v < 0 {
		return 0
	}
	return v
}

// cpuMax parses cpu.max ("<quota> <period>" or "max <period>").
func cpuMax(path string) (quota, period int64, ok bool) {
	b, err := os.ReadFile(filepath.Clean(path))
	if err != nil {
		return 0, 0, false
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return 0, 0, false
	}
	q, err1 := strconv.ParseInt(f[0], 10, 64)
	p, err2 := strconv.ParseInt(f[1], 10, 64)
	if err1 != nil || err2 != nil || q <= 0 || p <= 0 {
		return 0, 0, false
	}
	return q, p, true
}

func cpuUsageUsec(path string) (int64, bool) {
	f, err := os.Open(filepath.Clean(path))
	if err != nil {
		return 0, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "usage_usec "); ok {
			n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			return n, err == nil && n >= 0
		}
	}
	return 0, false
}

// operatorStats builds one OperatorStats from the runtime, the cgroup and the session.
func (s *session) operatorStats(cg *cgroupStats, now time.Time) *cloudv1.OperatorStats {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	st := &cloudv1.OperatorStats{
		Timestamp:            timestamppb.New(now),
		MemoryAllocBytes:     clampInt64(ms.Alloc),
		MemorySysBytes:       clampInt64(ms.Sys),
		MemoryHeapInuseBytes: clampInt64(ms.HeapInuse),
		NumGoroutines:        clampUint32(runtime.NumGoroutine()),
		NumGcCycles:          ms.NumGC,
		DataStreamHealthy:    s.healthy(s.data),
		ControlStreamHealthy: s.healthy(s.open[cloudconn.StreamControl].Load()),
		TotalMessagesSent:    s.e.messagesSent.Load(),
		TotalMessagesDropped: s.e.messagesFailed.Load(),
	}
	cg.fill(st, now)
	return st
}

// healthy: the stream is open, accepted and not stalled.
func (s *session) healthy(st *stream) bool {
	if st == nil || s.ctx.Err() != nil {
		return false
	}
	select {
	case <-st.accepted:
	default:
		return false
	}
	select {
	case <-st.done:
		return false
	default:
	}
	return st.blockedFor(time.Now()) < s.e.cfg.StallTimeout
}

// reportStats sends OperatorStats on StreamData every stats_interval while the session is
// Ready: the cloud sees the agent's own health.
func (s *session) reportStats() {
	cg := &cgroupStats{root: cgroupRoot}
	cg.fill(&cloudv1.OperatorStats{}, time.Now()) // the first CPU sample
	tick := time.NewTicker(s.e.cfg.StatsInterval)
	defer tick.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-s.failed:
			return
		case now := <-tick.C:
			ctx, cancel := context.WithTimeout(s.ctx, s.e.cfg.StatsInterval)
			_, err := s.send(ctx, cloudconn.StreamData, s.operatorStats(cg, now), false)
			cancel()
			if err != nil {
				s.e.logger.Debug("OperatorStats not sent", zap.Error(err))
			}
		}
	}
}

func clampInt64(v uint64) int64 {
	if v > 1<<63-1 {
		return 1<<63 - 1
	}
	return int64(v)
}

func clampUint32(v int) uint32 {
	if v < 0 {
		return 0
	}
	if v > 1<<32-1 {
		return 1<<32 - 1
	}
	return uint32(v)
}
