package hubblereceiver

import (
	"bytes"
	"context"
	"io"
	"net"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/config/configcompression"
	"go.opentelemetry.io/collector/config/configopaque"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/stats"

	"github.com/kestrelai/otelcol-kestrel/internal/testutil"
	"github.com/kestrelai/otelcol-kestrel/internal/testutil/relaytest"
	"github.com/kestrelai/otelcol-kestrel/receiver/hubblereceiver/internal/metadatatest"
)

// requestHeaders records the headers and compression of the requests a gRPC server receives.
type requestHeaders struct {
	mu          sync.Mutex
	headers     []metadata.MD
	compression []string
}

func (h *requestHeaders) TagRPC(ctx context.Context, _ *stats.RPCTagInfo) context.Context {
	return ctx
}
func (h *requestHeaders) TagConn(ctx context.Context, _ *stats.ConnTagInfo) context.Context {
	return ctx
}
func (h *requestHeaders) HandleConn(context.Context, stats.ConnStats) {}

func (h *requestHeaders) HandleRPC(_ context.Context, s stats.RPCStats) {
	if in, ok := s.(*stats.InHeader); ok {
		h.mu.Lock()
		defer h.mu.Unlock()
		h.headers = append(h.headers, in.Header)
		h.compression = append(h.compression, in.Compression)
	}
}

func (h *requestHeaders) seen() ([]metadata.MD, []string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.headers, h.compression
}

// The connection to Relay applies the configgrpc settings that matter for it (headers, user
// agent, compression of the request) without configgrpc's per-message RPC instrumentation:
// no otelgrpc metric or span is recorded for the stream, however many flows it carries.
func TestRelayConnectionAppliesSettingsWithoutRPCInstrumentation(t *testing.T) {
	events := loadFixture(t)[:300]
	seen := &requestHeaders{}
	_, addr := relaytest.Serve(t, newFakeRelay(events), "127.0.0.1:0", grpc.StatsHandler(seen))
	cfg := testConfig(addr)
	cfg.Headers = configopaque.MapList{{Name: "x-cluster", Value: "prod-eu"}}
	cfg.UserAgent = "kestrel-test/1"
	cfg.Compression = configcompression.TypeGzip
	tt, _ := receiveAll(t, cfg, events)

	headers, compression := seen.seen()
	require.Len(t, headers, 1, "one GetFlows request")
	assert.Equal(t, []string{"prod-eu"}, headers[0].Get("x-cluster"))
	require.NotEmpty(t, headers[0].Get("user-agent"))
	assert.True(t, strings.HasPrefix(headers[0].Get("user-agent")[0], "kestrel-test/1"), headers[0].Get("user-agent"))
	assert.Equal(t, []string{"gzip"}, compression)

	var rm metricdata.ResourceMetrics
	require.NoError(t, tt.Reader.Collect(context.Background(), &rm))
	for _, sm := range rm.ScopeMetrics {
		assert.NotContains(t, sm.Scope.Name, "otelgrpc", "metrics %v", sm.Metrics)
	}
	for _, span := range tt.SpanRecorder.Ended() {
		assert.NotContains(t, span.Name(), "GetFlows", "no span for the stream")
	}
}

// A compression configgrpc accepts for HTTP but gRPC has no compressor for fails at Start.
func TestRelayConnectionRejectsAnUnknownCompressor(t *testing.T) {
	cfg := testConfig("127.0.0.1:1")
	cfg.Compression = configcompression.TypeLz4
	tt := componenttest.NewTelemetry()
	t.Cleanup(func() { require.NoError(t, tt.Shutdown(context.Background())) })
	r, err := newReceiver(cfg, metadatatest.NewSettings(tt), new(consumertest.LogsSink))
	require.NoError(t, err)
	err = r.Start(context.Background(), componenttest.NewNopHost())
	require.ErrorContains(t, err, `unsupported compression type "lz4"`)
}

// A read waits for the low-water mark or the delay, not for more: less than the mark is read
// once the delay has passed (also after the connection was idle for a while), the mark is
// read, and the end of the stream is an EOF.
func TestLowWaterConnReadsBelowTheMarkAfterTheDelay(t *testing.T) {
	const mark, delay, idleDelay = 4096, 20 * time.Millisecond, 80 * time.Millisecond
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer lis.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := lis.Accept()
		if err == nil {
			accepted <- c
		}
	}()
	raw, err := net.Dial("tcp", lis.Addr().String())
	require.NoError(t, err)
	conn, err := newLowWaterConn(raw.(*net.TCPConn), mark, delay, idleDelay)
	require.NoError(t, err)
	defer conn.Close()
	peer := <-accepted

	if runtime.GOOS == "linux" {
		sc, err := raw.(*net.TCPConn).SyscallConn()
		require.NoError(t, err)
		var got int
		require.NoError(t, sc.Control(func(fd uintptr) {
			got, err = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVLOWAT)
		}))
		require.NoError(t, err)
		assert.Equal(t, mark, got)
	}

	read := func(want int) []byte {
		t.Helper()
		type result struct {
			b   []byte
			err error
		}
		done := make(chan result, 1)
		go func() {
			buf := make([]byte, 2*mark)
			var got []byte
			for len(got) < want {
				n, err := conn.Read(buf)
				got = append(got, buf[:n]...)
				if err != nil {
					done <- result{got, err}
					return
				}
			}
			done <- result{got, nil}
		}()
		select {
		case r := <-done:
			require.NoError(t, r.err)
			return r.b
		case <-time.After(testutil.WaitFor):
			t.Fatal("the read waited for more than the low-water mark")
			return nil
		}
	}

	_, err = peer.Write([]byte("ping ack"))
	require.NoError(t, err)
	assert.Equal(t, "ping ack", string(read(len("ping ack"))))

	// Written after the reader has waited long enough to reach the idle delay.
	go func() {
		time.Sleep(5 * idleDelay)
		_, _ = peer.Write([]byte("late"))
	}()
	assert.Equal(t, "late", string(read(len("late"))))

	full := bytes.Repeat([]byte{'f'}, mark)
	_, err = peer.Write(full)
	require.NoError(t, err)
	assert.Equal(t, full, read(mark))

	require.NoError(t, peer.Close())
	n, err := conn.Read(make([]byte, 16))
	assert.Zero(t, n)
	assert.ErrorIs(t, err, io.EOF)
}
