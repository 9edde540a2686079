package e2e

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/kestrelai/otelcol-kestrel/internal/devcloud"
	"github.com/kestrelai/otelcol-kestrel/internal/testutil"
	"github.com/kestrelai/otelcol-kestrel/internal/testutil/cloudtest"
)

const (
	otlpLogsPath = "/opentelemetry.proto.collector.logs.v1.LogsService/Export"
	alsPath      = "/envoy.service.accesslog.v3.AccessLogService/StreamAccessLogs"
)

// listeners are the addresses of a collector started from config/local.yaml.
type listeners struct{ grpc, http, als, metrics string }

// startLocalConfig runs config/local.yaml (its receivers and their limits as shipped) with
// every listener moved to a free port and kestrel_command pointed at cloud.
func startLocalConfig(t *testing.T, cloud *cloudtest.Cloud) listeners {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "..", "config", "local.yaml"))
	require.NoError(t, err)
	var cfg map[string]any
	require.NoError(t, yaml.Unmarshal(raw, &cfg))
	l := listeners{grpc: testutil.FreeAddr(t), http: testutil.FreeAddr(t), als: testutil.FreeAddr(t), metrics: testutil.FreeAddr(t)}
	// The listeners under test are the receivers'; health_check and zpages stay out.
	cfg["extensions"] = map[string]any{"kestrel_command": cloud.ConnectionConfig()}
	rcv := cfg["receivers"].(map[string]any)
	protocols := rcv["otlp"].(map[string]any)["protocols"].(map[string]any)
	protocols["grpc"].(map[string]any)["endpoint"] = l.grpc
	protocols["http"].(map[string]any)["endpoint"] = l.http
	rcv["envoy_access_log"].(map[string]any)["endpoint"] = l.als
	svc := cfg["service"].(map[string]any)
	svc["extensions"] = []string{"kestrel_command"}
	// detailed: the gRPC and HTTP servers' own metrics, which count refused requests by status.
	host, portStr, err := net.SplitHostPort(l.metrics)
	require.NoError(t, err)
	port, err := strconv.Atoi(portStr)
	require.NoError(t, err)
	svc["telemetry"] = map[string]any{"logs": map[string]any{"level": "error"}, "metrics": map[string]any{"level": "detailed",
		"readers": []any{map[string]any{"pull": map[string]any{"exporter": map[string]any{"prometheus": map[string]any{"host": host, "port": port}}}}}}}
	out, err := yaml.Marshal(cfg)
	require.NoError(t, err)
	startWithConfig(t, string(out))
	cloud.WaitCommitted(t)
	return l
}

// hostileLoad is how many streams the rapid reset opens and how many idle connections are
// held, scaled down under the race detector.
func hostileLoad() (streams, idle int) {
	if raceEnabled {
		return 2_000, 200
	}
	return 20_000, 2_000
}

// assertHeapGrowth checks a heap growth measured by heapPeak, except under the race
// detector, whose allocations say nothing about the collector's.
func assertHeapGrowth(t *testing.T, grew, limit uint64) {
	t.Helper()
	if !raceEnabled {
		assert.Less(t, grew, limit, "heap growth")
	}
}

// heapPeak samples the live heap every few milliseconds until stop is called and returns
// the largest growth over the heap when it started.
func heapPeak(t *testing.T) (stop func() uint64) {
	t.Helper()
	runtime.GC()
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	read := func() uint64 { metrics.Read(sample); return sample[0].Value.Uint64() }
	base := read()
	var peak atomic.Uint64
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		for {
			if v := read(); v > peak.Load() {
				peak.Store(v)
			}
			select {
			case <-done:
				return
			case <-time.After(2 * time.Millisecond):
			}
		}
	}()
	return func() uint64 {
		close(done)
		<-finished
		if p := peak.Load(); p > base {
			return p - base
		}
		return 0
	}
}

// h2c is an HTTP/2 client without TLS (prior knowledge), for raw gRPC requests.
func h2c() *http.Client {
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{Protocols: &p}}
}

// rawGRPC sends one gRPC message frame (compressed flag, declared length, then body) and
// returns the grpc-status the server answered with.
func rawGRPC(t *testing.T, addr, path string, compressed bool, declared uint32, body io.Reader) string {
	t.Helper()
	prefix := make([]byte, 5)
	if compressed {
		prefix[0] = 1
	}
	binary.BigEndian.PutUint32(prefix[1:], declared)
	req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, "http://"+addr+path, io.MultiReader(bytes.NewReader(prefix), body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/grpc")
	req.Header.Set("TE", "trailers")
	if compressed {
		req.Header.Set("Grpc-Encoding", "gzip")
	}
	resp, err := h2c().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	if s := resp.Trailer.Get("Grpc-Status"); s != "" {
		return s
	}
	return resp.Header.Get("Grpc-Status")
}

// zeros reads n zero bytes without holding them.
func zeros(n int64) io.Reader { return io.LimitReader(zeroReader{}, n) }

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// gzipBomb is n zero bytes, gzip-compressed (about 1,000:1).
func gzipBomb(t *testing.T, n int64) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	require.NoError(t, err)
	_, err = io.Copy(zw, zeros(n))
	require.NoError(t, err)
	require.NoError(t, zw.Close())
	return buf.Bytes()
}

// healthyExport checks that the OTLP gRPC listener still answers an ordinary (empty)
// request with OK.
func healthyExport(t *testing.T, addr string) {
	t.Helper()
	assert.Equal(t, "0", rawGRPC(t, addr, otlpLogsPath, false, 0, bytes.NewReader(nil)), "an ordinary request after the abuse")
}

// rapidReset opens one HTTP/2 connection and opens and cancels n streams on it as fast as
// it can write (CVE-2023-44487). It returns whether the server sent GOAWAY.
func rapidReset(t *testing.T, addr, path string, n int) (goaway bool) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer conn.Close()
	w := bufio.NewWriterSize(conn, 64<<10)
	_, err = w.WriteString(http2.ClientPreface)
	require.NoError(t, err)
	fr := http2.NewFramer(w, conn)
	require.NoError(t, fr.WriteSettings())
	var sawGoaway atomic.Bool
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		for {
			f, err := fr.ReadFrame()
			if err != nil {
				return
			}
			if _, ok := f.(*http2.GoAwayFrame); ok {
				sawGoaway.Store(true)
			}
		}
	}()
	var hbuf bytes.Buffer
	enc := hpack.NewEncoder(&hbuf)
	for i := range n {
		id := uint32(2*i + 1)
		hbuf.Reset()
		for _, kv := range [][2]string{{":method", "POST"}, {":scheme", "http"}, {":path", path}, {":authority", addr},
			{"content-type", "application/grpc"}, {"te", "trailers"}} {
			require.NoError(t, enc.WriteField(hpack.HeaderField{Name: kv[0], Value: kv[1]}))
		}
		if fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: hbuf.Bytes(), EndHeaders: true}) != nil ||
			fr.WriteRSTStream(id, http2.ErrCodeCancel) != nil {
			break // the server closed the connection
		}
		if i%100 == 99 && w.Flush() != nil {
			break
		}
	}
	_ = w.Flush()
	time.Sleep(200 * time.Millisecond)
	_ = conn.Close()
	<-readDone
	return sawGoaway.Load()
}

// Hostile peers on the listeners of config/local.yaml: decompression bombs and oversized
// messages are refused before they are held, HTTP/2 rapid reset and thousands of idle
// connections leave memory bounded, and a slowloris client is cut off by
// read_header_timeout. After each, ordinary requests are served.
func TestHostilePeers(t *testing.T) {
	cloud := cloudtest.Start(t, devcloud.Config{})
	l := startLocalConfig(t, cloud)

	// A slowloris client on OTLP/HTTP runs alongside everything else: it sends one header
	// line every 2 s and never finishes; read_header_timeout (10 s) must close it.
	const slowConns = 100
	slowStart := time.Now()
	var slowClosed sync.WaitGroup
	var slowMax atomic.Int64
	for range slowConns {
		conn, err := net.Dial("tcp", l.http)
		require.NoError(t, err)
		t.Cleanup(func() { _ = conn.Close() })
		slowClosed.Add(1)
		go func() {
			defer slowClosed.Done()
			_, _ = conn.Write([]byte("POST /v1/logs HTTP/1.1\r\nHost: x\r\n"))
			go func() {
				for i := 0; ; i++ {
					time.Sleep(2 * time.Second)
					if _, err := fmt.Fprintf(conn, "X-Slow-%d: 1\r\n", i); err != nil {
						return
					}
				}
			}()
			_ = conn.SetReadDeadline(time.Now().Add(40 * time.Second))
			_, _ = io.Copy(io.Discard, conn) // returns when the server closes
			if d := int64(time.Since(slowStart)); d > slowMax.Load() {
				slowMax.Store(d)
			}
		}()
	}

	bomb := gzipBomb(t, 200<<20)
	t.Logf("gzip bomb: %d bytes, 200 MiB decompressed", len(bomb))

	t.Run("grpc oversized message", func(t *testing.T) {
		peak := heapPeak(t)
		got := rawGRPC(t, l.grpc, otlpLogsPath, false, 200<<20, zeros(200<<20))
		grew := peak()
		t.Logf("200 MiB message: grpc-status %s, heap grew at most %d MiB", got, grew>>20)
		assert.Equal(t, "8", got, "ResourceExhausted")
		assertHeapGrowth(t, grew, 64<<20)
		healthyExport(t, l.grpc)
	})
	t.Run("grpc decompression bomb", func(t *testing.T) {
		peak := heapPeak(t)
		got := rawGRPC(t, l.grpc, otlpLogsPath, true, uint32(len(bomb)), bytes.NewReader(bomb))
		grew := peak()
		t.Logf("gzip bomb on OTLP/gRPC: grpc-status %s, heap grew at most %d MiB", got, grew>>20)
		assert.Equal(t, "8", got, "ResourceExhausted")
		assertHeapGrowth(t, grew, 64<<20)
		healthyExport(t, l.grpc)
	})
	t.Run("als decompression bomb and oversized message", func(t *testing.T) {
		peak := heapPeak(t)
		bombStatus := rawGRPC(t, l.als, alsPath, true, uint32(len(bomb)), bytes.NewReader(bomb))
		bigStatus := rawGRPC(t, l.als, alsPath, false, 200<<20, zeros(200<<20))
		grew := peak()
		t.Logf("ALS: gzip bomb grpc-status %s, 200 MiB message grpc-status %s, heap grew at most %d MiB", bombStatus, bigStatus, grew>>20)
		assert.Equal(t, "8", bombStatus)
		assert.Equal(t, "8", bigStatus)
		assertHeapGrowth(t, grew, 64<<20)
	})
	t.Run("http decompression bomb and oversized body", func(t *testing.T) {
		post := func(body io.Reader, gz bool) int {
			req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, "http://"+l.http+"/v1/logs", body)
			require.NoError(t, err)
			req.Header.Set("Content-Type", "application/x-protobuf")
			if gz {
				req.Header.Set("Content-Encoding", "gzip")
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return 0 // the server closed the connection while the body was still going
			}
			defer resp.Body.Close()
			_, _ = io.Copy(io.Discard, resp.Body)
			return resp.StatusCode
		}
		peak := heapPeak(t)
		bombCode := post(bytes.NewReader(bomb), true)
		bigCode := post(zeros(200<<20), false)
		grew := peak()
		t.Logf("OTLP/HTTP: gzip bomb HTTP %d, 200 MiB body HTTP %d, heap grew at most %d MiB", bombCode, bigCode, grew>>20)
		assert.Contains(t, []int{http.StatusBadRequest, http.StatusRequestEntityTooLarge}, bombCode)
		assert.Contains(t, []int{0, http.StatusBadRequest, http.StatusRequestEntityTooLarge}, bigCode)
		// The body limit (20 MiB) is read into memory; unbounded decompression would need 200 MiB.
		assertHeapGrowth(t, grew, 96<<20)
	})
	t.Run("http2 rapid reset", func(t *testing.T) {
		streams, _ := hostileLoad()
		goroutines := runtime.NumGoroutine()
		peak := heapPeak(t)
		start := time.Now()
		goawayGRPC := rapidReset(t, l.grpc, otlpLogsPath, streams)
		goawayALS := rapidReset(t, l.als, alsPath, streams)
		grew := peak()
		t.Logf("rapid reset: %d streams opened and cancelled on OTLP/gRPC and on ALS in %v; GOAWAY %v/%v; heap grew at most %d MiB; goroutines %d before, %d after",
			streams, time.Since(start).Round(time.Millisecond), goawayGRPC, goawayALS, grew>>20, goroutines, runtime.NumGoroutine())
		assertHeapGrowth(t, grew, 64<<20)
		assert.Eventually(t, func() bool { return runtime.NumGoroutine() < goroutines+200 }, 10*time.Second, 50*time.Millisecond,
			"the cancelled streams' handlers end")
		healthyExport(t, l.grpc)
	})
	t.Run("thousands of idle connections", func(t *testing.T) {
		_, idle := hostileLoad()
		goroutines := runtime.NumGoroutine()
		peak := heapPeak(t)
		conns := make([]net.Conn, 0, idle)
		for i := range idle {
			conn, err := net.Dial("tcp", l.grpc)
			require.NoError(t, err, "connection %d", i)
			conns = append(conns, conn)
			// A complete HTTP/2 handshake, then nothing.
			_, _ = conn.Write([]byte(http2.ClientPreface))
			_ = http2.NewFramer(conn, conn).WriteSettings()
		}
		healthyExport(t, l.grpc)
		grew := peak()
		t.Logf("%d idle HTTP/2 connections on OTLP/gRPC: heap grew at most %d MiB (%d KiB each), goroutines %d before, %d with them",
			idle, grew>>20, grew/uint64(idle)>>10, goroutines, runtime.NumGoroutine())
		assertHeapGrowth(t, grew, 256<<20)
		for _, c := range conns {
			_ = c.Close()
		}
	})

	slowClosed.Wait()
	t.Logf("slowloris: %d connections trickling headers, all closed by the server after at most %v", slowConns, time.Duration(slowMax.Load()).Round(100*time.Millisecond))
	assert.Less(t, time.Duration(slowMax.Load()), 20*time.Second, "read_header_timeout closes slow header senders")
	healthyExport(t, l.grpc)

	// Counted: the collector's own server metrics (level detailed), by status.
	resp, err := http.Get("http://" + l.metrics + "/metrics") //nolint:noctx // a loopback scrape
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	count := func(metric string, labels ...string) int {
		total := 0
	lines:
		for line := range strings.SplitSeq(string(body), "\n") {
			if !strings.HasPrefix(line, metric+"{") {
				continue
			}
			for _, l := range labels {
				if !strings.Contains(line, l) {
					continue lines
				}
			}
			n, err := strconv.Atoi(line[strings.LastIndexByte(line, ' ')+1:])
			require.NoError(t, err, line)
			total += n
		}
		return total
	}
	streams, _ := hostileLoad()
	const calls = "rpc_server_call_duration_count"
	otlp, als := `rpc_method="opentelemetry.proto.collector.logs.v1.LogsService/Export"`, `rpc_method="envoy.service.accesslog.v3.AccessLogService/StreamAccessLogs"`
	exhausted, cancelled := `rpc_response_status_code="RESOURCE_EXHAUSTED"`, `rpc_response_status_code="CANCELLED"`
	assert.Equal(t, 2, count(calls, otlp, exhausted), "OTLP/gRPC: the oversized message and the bomb")
	assert.Equal(t, 2, count(calls, als, exhausted), "ALS: the oversized message and the bomb")
	assert.Equal(t, streams, count(calls, otlp, cancelled), "OTLP/gRPC: the reset streams")
	assert.Equal(t, streams, count(calls, als, cancelled), "ALS: the reset streams")
	assert.Equal(t, 2, count("http_server_request_duration_count", `http_route="/v1/logs"`, `http_response_status_code="400"`), "OTLP/HTTP: the bomb and the oversized body")
}
