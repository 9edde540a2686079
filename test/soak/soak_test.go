// Package soak runs the fault tests that need the built binaries as separate processes and
// minutes of load: kill -9 of the collector and of the cloud, a long cloud outage with a
// file_storage queue, and an in-memory queue overflowing. Each logs sent / accepted /
// delivered / lost / duplicated; docs/reliability.md records the results. `make soak` builds
// the binaries and runs them; without SOAK_COLLECTOR it skips.
package soak

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/kestrelai/otelcol-kestrel/internal/devcloud"
	"github.com/kestrelai/otelcol-kestrel/internal/testutil"
	"github.com/kestrelai/otelcol-kestrel/internal/testutil/cloudtest"
	"github.com/kestrelai/otelcol-kestrel/internal/testutil/faulttest"
)

// binaries returns the collector and devcloud binaries make soak provides.
func binaries(t *testing.T) (collector, cloud string) {
	t.Helper()
	collector = os.Getenv("SOAK_COLLECTOR")
	if collector == "" {
		t.Skip("SOAK_COLLECTOR is not set: run make soak")
	}
	cloud = os.Getenv("SOAK_DEVCLOUD")
	for _, b := range []string{collector, cloud} {
		_, err := os.Stat(b)
		require.NoError(t, err, "make soak builds bin/otelcol-kestrel and bin/kestrel-devcloud")
	}
	return collector, cloud
}

// duration reads a duration from the environment (e.g. SOAK_OUTAGE=2m), else def.
func duration(t *testing.T, name string, def time.Duration) time.Duration {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	require.NoError(t, err, name)
	return d
}

// collector is otelcol-kestrel with a fixed configuration, restartable on the same ports
// and queue directory.
type collector struct {
	bin, config, health, otlp, dir string
	proc                           *faulttest.Process
}

// queueConfig is the kestrel exporter's sending_queue: file_storage (persistent) or in
// memory, bounded in bytes.
type queueConfig struct {
	persistent bool
	bytes      int
}

func newCollector(t *testing.T, bin, certs, cloudAddr string, q queueConfig) *collector {
	t.Helper()
	c := &collector{bin: bin, health: testutil.FreeAddr(t), otlp: testutil.FreeAddr(t), dir: t.TempDir()}
	conn := cloudtest.ConnectionConfig(certs, cloudAddr)
	conn["reconnect"] = map[string]any{"initial_interval": "200ms", "max_interval": "1s"}
	queue := map[string]any{"queue_size": q.bytes}
	extensions := map[string]any{
		"health_check":    map[string]any{"endpoint": c.health},
		"kestrel_command": conn,
	}
	order := []string{"health_check", "kestrel_command"}
	if q.persistent {
		queueDir := filepath.Join(c.dir, "queue")
		require.NoError(t, os.MkdirAll(queueDir, 0o700))
		extensions["file_storage"] = map[string]any{"directory": queueDir}
		order = append(order, "file_storage")
		queue["storage"] = "file_storage"
	}
	cfg := map[string]any{
		"extensions": extensions,
		"receivers":  map[string]any{"otlp": map[string]any{"protocols": map[string]any{"grpc": map[string]any{"endpoint": c.otlp}}}},
		"exporters": map[string]any{"kestrel": map[string]any{
			"connection":       "kestrel_command",
			"sending_queue":    queue,
			"retry_on_failure": map[string]any{"initial_interval": "100ms", "max_interval": "1s", "max_elapsed_time": 0},
		}},
		"service": map[string]any{
			"extensions": order,
			"pipelines":  map[string]any{"logs": map[string]any{"receivers": []string{"otlp"}, "exporters": []string{"kestrel"}}},
			"telemetry":  map[string]any{"logs": map[string]any{"level": "warn"}, "metrics": map[string]any{"level": "none"}},
		},
	}
	raw, err := json.Marshal(cfg) // JSON is YAML
	require.NoError(t, err)
	c.config = filepath.Join(c.dir, "config.yaml")
	require.NoError(t, os.WriteFile(c.config, raw, 0o600))
	return c
}

func (c *collector) start(t *testing.T) {
	t.Helper()
	p, err := faulttest.Start(c.bin, filepath.Join(c.dir, "collector.log"), "--config", c.config)
	require.NoError(t, err)
	c.proc = p
	t.Cleanup(func() { _ = p.Stop(30 * time.Second) })
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	require.NoError(t, p.WaitHTTP(ctx, "http://"+c.health+"/"))
}

// sender starts a Sender against c; stop ends it (finishing the request in flight) and
// returns it.
func sender(t *testing.T, c *collector, rate int) (s *faulttest.Sender, stop func()) {
	t.Helper()
	s, err := faulttest.NewSender(c.otlp, rate, 50)
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.Run(ctx, 2*time.Minute)
	}()
	return s, func() {
		cancel()
		<-done
	}
}

// waitDelivered waits until every accepted record arrived, per delivered, or timeout.
func waitDelivered(t *testing.T, s *faulttest.Sender, delivered func() map[int]int, timeout time.Duration) map[int]int {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		d := delivered()
		if len(faulttest.LostOnes(s, d, 1)) == 0 || time.Now().After(deadline) {
			return d
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// recorded counts the Sender's events in a devcloud record directory.
func recorded(t *testing.T, dir string) func() map[int]int {
	return func() map[int]int {
		got, err := faulttest.DeliveredInRecordDir(dir)
		require.NoError(t, err)
		return got
	}
}

func report(t *testing.T, name string, tally faulttest.Tally, extra string) {
	t.Helper()
	t.Logf("%s: %s%s", name, tally, extra)
}

// kill -9 of the collector while its file_storage queue drains a backlog, at 1,500
// records/s, three times: each cycle the cloud goes away for 3 s (the queue fills), comes
// back, and the collector is killed as soon as the backlog starts arriving. Nothing accepted
// is lost; what the dead process had sent but not seen acknowledged is sent again by the
// restarted one (duplicates, counted). The same run against a cloud without acknowledgements
// (devcloud NoAcks, an older server) is the baseline: there a batch leaves the queue once
// written to the socket.
func TestCollectorKill9(t *testing.T) {
	bin, _ := binaries(t)
	for _, acks := range []bool{true, false} {
		t.Run(fmt.Sprintf("acks=%v", acks), func(t *testing.T) {
			records := filepath.Join(t.TempDir(), "records")
			cloud := cloudtest.Start(t, devcloud.Config{HeartbeatInterval: 5 * time.Second, NoAcks: !acks, RecordDir: records})
			c := newCollector(t, bin, cloud.Certs, cloud.Addr(), queueConfig{persistent: true, bytes: 256 << 20})
			c.start(t)
			cloud.WaitCommitted(t)

			s, stop := sender(t, c, 1500)
			const cycles = 3
			for range cycles {
				time.Sleep(3 * time.Second)
				cloud.Kill()
				time.Sleep(3 * time.Second)
				cloud.Restart(t)
				waitReceiving(t, func() int64 { return received(cloud.Status()) }, 200)
				c.proc.Kill()
				c.start(t)
			}
			time.Sleep(3 * time.Second)
			stop()
			d := waitDelivered(t, s, recorded(t, records), time.Minute)
			tally := faulttest.Count(s, d, cloud.Status().Duplicates)
			report(t, fmt.Sprintf("collector kill -9 while draining, acks=%v", acks), tally, fmt.Sprintf(", %d kills", cycles))
			if acks {
				require.Zero(t, tally.Lost, "lost: %v", faulttest.LostOnes(s, d, 20))
			}
		})
	}
}

// received is what the one operator's current data and events streams have received.
func received(st devcloud.Status) int64 {
	var n int64
	for _, op := range st.Operators {
		for _, ss := range op.Streams {
			n += ss.Received
		}
	}
	return n
}

// waitReceiving waits until count reaches n: the backlog is arriving.
func waitReceiving(t *testing.T, count func() int64, n int64) {
	t.Helper()
	require.Eventually(t, func() bool { return count() >= n }, time.Minute, 5*time.Millisecond)
}

// devcloudProc is kestrel-devcloud as a separate process recording into one directory,
// restartable on the same address.
type devcloudProc struct {
	bin, certs, addr, admin, records, dir string
	noAcks                                bool
	proc                                  *faulttest.Process
}

func (d *devcloudProc) start(t *testing.T) {
	t.Helper()
	args := []string{"serve", "--certs", d.certs, "--listen", d.addr, "--admin", d.admin, "--record", d.records, "--heartbeat", "5s"}
	if d.noAcks {
		args = append(args, "--no-acks")
	}
	p, err := faulttest.Start(d.bin, filepath.Join(d.dir, "devcloud.log"), args...)
	require.NoError(t, err)
	d.proc = p
	t.Cleanup(p.Kill)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	require.NoError(t, p.WaitHTTP(ctx, "http://"+d.admin+"/v1/status"))
}

func (d *devcloudProc) status(t *testing.T) devcloud.Status {
	t.Helper()
	resp, err := http.Get("http://" + d.admin + "/v1/status") //nolint:noctx // a loopback admin API in a test
	require.NoError(t, err)
	defer resp.Body.Close()
	var st devcloud.Status
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&st))
	return st
}

// kill -9 of the cloud (kestrel-devcloud as a separate process, recording to files) while
// the collector drains a backlog to it, at 1,500 records/s, three times: each cycle the
// cloud is killed and 3 s later restarted on its record directory (the collector's queue
// fills meanwhile), then killed again as soon as the backlog starts arriving, and restarted
// 2 s later. Nothing accepted is lost, and the copies the collector re-sends are filtered by
// sequence. The baseline is the same run with --no-acks (an older server).
func TestCloudKill9(t *testing.T) {
	bin, cloudBin := binaries(t)
	for _, acks := range []bool{true, false} {
		t.Run(fmt.Sprintf("acks=%v", acks), func(t *testing.T) {
			dir := t.TempDir()
			d := &devcloudProc{bin: cloudBin, certs: filepath.Join(dir, "certs"), addr: testutil.FreeAddr(t), admin: testutil.FreeAddr(t),
				records: filepath.Join(dir, "records"), dir: dir, noAcks: !acks}
			require.NoError(t, devcloud.GenerateCerts(d.certs, devcloud.CertOptions{Tenant: cloudtest.Tenant}))
			d.start(t)
			c := newCollector(t, bin, d.certs, d.addr, queueConfig{bytes: 64 << 20})
			c.start(t)

			s, stop := sender(t, c, 1500)
			const cycles = 3
			var filtered int64
			for range cycles {
				time.Sleep(3 * time.Second)
				filtered += d.status(t).Duplicates
				d.proc.Kill()
				time.Sleep(3 * time.Second)
				d.start(t)
				waitReceiving(t, func() int64 { return received(d.status(t)) }, 200)
				filtered += d.status(t).Duplicates
				d.proc.Kill()
				time.Sleep(2 * time.Second)
				d.start(t)
			}
			time.Sleep(3 * time.Second)
			stop()
			got := waitDelivered(t, s, recorded(t, d.records), time.Minute)
			filtered += d.status(t).Duplicates
			tally := faulttest.Count(s, got, filtered)
			report(t, fmt.Sprintf("cloud kill -9 while draining, acks=%v", acks), tally, fmt.Sprintf(", %d kills", 2*cycles))
			if acks {
				require.Zero(t, tally.Lost, "lost: %v", faulttest.LostOnes(s, got, 20))
			}
		})
	}
}

// A cloud outage (10 minutes by default, SOAK_OUTAGE) at 2,000 records/s with a file_storage
// queue large enough for it: every record is accepted during the outage and delivered after.
func TestLongOutageWithFileStorage(t *testing.T) {
	bin, _ := binaries(t)
	// Recording to files: what arrived before the outage counts, and the restarted cloud
	// keeps its acknowledged sequences.
	records := filepath.Join(t.TempDir(), "records")
	cloud := cloudtest.Start(t, devcloud.Config{HeartbeatInterval: 5 * time.Second, RecordDir: records})
	c := newCollector(t, bin, cloud.Certs, cloud.Addr(), queueConfig{persistent: true, bytes: 2 << 30})
	c.start(t)
	cloud.WaitCommitted(t)

	outage := duration(t, "SOAK_OUTAGE", 10*time.Minute)
	s, stop := sender(t, c, 2000)
	time.Sleep(5 * time.Second)
	cloud.Kill()
	down := time.Now()
	time.Sleep(outage)
	_, acceptedInOutage, refused, _ := s.Counts()
	cloud.Restart(t)
	back := time.Now()
	time.Sleep(5 * time.Second)
	stop()
	d := waitDelivered(t, s, recorded(t, records), 15*time.Minute)
	tally := faulttest.Count(s, d, cloud.Status().Duplicates)
	report(t, "outage with file_storage", tally, fmt.Sprintf(", outage %v, accepted by its end %d, refused attempts by its end %d, all delivered %v after the cloud returned",
		back.Sub(down).Round(time.Second), acceptedInOutage, refused, time.Since(back).Round(time.Second)))
	require.Zero(t, tally.Lost, "lost: %v", faulttest.LostOnes(s, d, 20))
	require.Zero(t, refused, "a queue sized for the outage refuses nothing")
}

// The in-memory queue (8 MiB) overflows during a 60 s outage at 2,000 records/s: what it
// cannot hold is refused to the OTLP sender (which retries), never dropped.
func TestMemoryQueueOverflowIsRefused(t *testing.T) {
	bin, _ := binaries(t)
	// Recording to files: what arrived before the outage counts, and the restarted cloud
	// keeps its acknowledged sequences.
	records := filepath.Join(t.TempDir(), "records")
	cloud := cloudtest.Start(t, devcloud.Config{HeartbeatInterval: 5 * time.Second, RecordDir: records})
	c := newCollector(t, bin, cloud.Certs, cloud.Addr(), queueConfig{bytes: 8 << 20})
	c.start(t)
	cloud.WaitCommitted(t)

	outage := duration(t, "SOAK_OVERFLOW_OUTAGE", time.Minute)
	s, stop := sender(t, c, 2000)
	time.Sleep(5 * time.Second)
	cloud.Kill()
	time.Sleep(outage)
	_, _, refused, byCode := s.Counts()
	cloud.Restart(t)
	time.Sleep(5 * time.Second)
	stop()
	d := waitDelivered(t, s, recorded(t, records), 5*time.Minute)
	tally := faulttest.Count(s, d, cloud.Status().Duplicates)
	codes := ""
	for code, n := range byCode {
		codes += " " + code.String() + "=" + strconv.Itoa(n)
	}
	report(t, "in-memory queue overflow", tally, ", refusals by code:"+codes)
	require.Positive(t, refused, "an 8 MiB queue cannot hold the outage")
	require.Zero(t, tally.Lost, "lost: %v", faulttest.LostOnes(s, d, 20))
}
