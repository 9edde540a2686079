package hubblereceiver // import "github.com/kestrelai/otelcol-kestrel/receiver/hubblereceiver"

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"go.opentelemetry.io/collector/component"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/metadata"

	"github.com/kestrelai/otelcol-kestrel/internal/http2merge"
)

// dialRelay connects to Relay with the receiver's configgrpc client settings, applied as
// configgrpc's ToClientConn applies them, but without the otelgrpc stats handler that
// ToClientConn always installs and no option removes. Relay's one GetFlows stream carries a
// message per flow, and the handler's event for each (two allocations, a clock read and a
// call) was about 7 % of the relay agent's CPU at 20,000 flows/s, for RPC metrics and a span
// of a stream that lasts as long as the process. The receiver's own metrics count the flows,
// reconnects and lost events instead.
func dialRelay(ctx context.Context, cfg *Config, extensions map[component.ID]component.Component) (*grpc.ClientConn, error) {
	creds, err := joiningCredentials(ctx, cfg)
	if err != nil {
		return nil, err
	}
	callOpts := []grpc.CallOption{grpc.WaitForReady(cfg.WaitForReady)}
	if cfg.Compression.IsCompressed() {
		// configgrpc's compression types are named as the gRPC compressors it registers.
		name := string(cfg.Compression)
		if encoding.GetCompressor(name) == nil {
			return nil, fmt.Errorf("unsupported compression type %q", name)
		}
		callOpts = append(callOpts, grpc.UseCompressor(name))
	}
	opts := []grpc.DialOption{
		grpc.WithDefaultCallOptions(callOpts...),
		creds,
		grpc.WithInitialWindowSize(relayWindow),
		grpc.WithInitialConnWindowSize(relayWindow),
	}
	if cfg.ReadBufferSize > 0 {
		opts = append(opts, grpc.WithReadBufferSize(cfg.ReadBufferSize))
	}
	if cfg.WriteBufferSize > 0 {
		opts = append(opts, grpc.WithWriteBufferSize(cfg.WriteBufferSize))
	}
	if cfg.Keepalive.HasValue() {
		ka := cfg.Keepalive.Get()
		opts = append(opts, grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: ka.Time, Timeout: ka.Timeout, PermitWithoutStream: ka.PermitWithoutStream}))
	}
	if (cfg.Auth.HasValue() || len(cfg.Middlewares) > 0 || cfg.DialerMiddleware.HasValue()) && extensions == nil {
		return nil, errors.New("auth and middlewares need the collector's extensions")
	}
	if cfg.Auth.HasValue() {
		auth, err := cfg.Auth.Get().GetGRPCClientAuthenticator(ctx, extensions)
		if err != nil {
			return nil, err
		}
		perRPC, err := auth.PerRPCCredentials()
		if err != nil {
			return nil, err
		}
		opts = append(opts, grpc.WithPerRPCCredentials(perRPC))
	}
	if cfg.BalancerName != "" {
		opts = append(opts, grpc.WithDefaultServiceConfig(fmt.Sprintf(`{"loadBalancingPolicy":%q}`, cfg.BalancerName)))
	}
	if cfg.Authority != "" {
		opts = append(opts, grpc.WithAuthority(cfg.Authority))
	}
	if cfg.UserAgent != "" {
		opts = append(opts, grpc.WithUserAgent(cfg.UserAgent))
	}
	if len(cfg.Headers) > 0 {
		var kv []string
		for k, v := range cfg.Headers.Iter {
			kv = append(kv, k, string(v))
		}
		opts = append(opts, grpc.WithStreamInterceptor(func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
			return streamer(metadata.AppendToOutgoingContext(ctx, kv...), desc, cc, method, opts...)
		}))
	}
	for _, m := range cfg.Middlewares {
		mopts, err := m.GetGRPCClientOptions(ctx, extensions)
		if err != nil {
			return nil, fmt.Errorf("gRPC client options from middleware: %w", err)
		}
		opts = append(opts, mopts...)
	}
	if cfg.DialerMiddleware.HasValue() {
		// A configured dialer_middleware dials itself; its connections are read as they come.
		dial, err := cfg.DialerMiddleware.Get().GetDialer(ctx, extensions)
		if err != nil {
			return nil, err
		}
		opts = append(opts, grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) {
			return dial(ctx, "tcp", addr)
		}))
	} else {
		// A PING acknowledgement may wait below the low-water mark for the idle delay, which must
		// stay well within the keepalive timeout.
		idle := lowWaterIdleDelay
		if cfg.Keepalive.HasValue() && cfg.Keepalive.Get().Timeout > 0 {
			idle = min(idle, cfg.Keepalive.Get().Timeout/4)
		}
		opts = append(opts, relayDialer(cfg.Endpoint, min(lowWaterDelay, idle), idle))
	}
	// http:// and https:// are not gRPC resolver schemes; configgrpc strips them likewise.
	target := strings.TrimPrefix(strings.TrimPrefix(cfg.Endpoint, "http://"), "https://")
	conn, err := grpc.NewClient(target, opts...)
	if err != nil {
		return nil, err
	}
	conn.Connect()
	return conn, nil
}

// Relay forwards flows one gRPC message at a time as the nodes report them, so a connection
// read as soon as it is readable wakes the agent (its poller, gRPC's reader, the goroutine
// it hands messages to, the runtime's monitor) for every flow or two: at 20,000 flows/s that
// costs more CPU than decoding and aggregating the flows. Each read should take many flows;
// flows are aggregated over 30 s, so a short delay changes nothing downstream.

// lowWater is the receive low-water mark (SO_RCVLOWAT) of a TCP connection to Relay: the
// kernel wakes the reader once that much has arrived, about 140 flows, not for every
// segment. At 20,000 flows/s it fills in about 7 ms; the connection's flow-control window
// (relayWindow) is 8 times as large, so Relay is never held up by it.
const lowWater = 128 << 10

// lowWaterDelay bounds how long data below the low-water mark waits to be read: flows when
// they come slowly, and the HTTP/2 frames the connection must answer (PING, SETTINGS).
// While nothing arrives at all the wait doubles up to lowWaterIdleDelay, so that an idle
// connection wakes the agent once a second, not ten times; both are shortened to a quarter
// of the keepalive timeout (20 s by default) if that is less, so that a PING acknowledgement
// is read in time.
const (
	lowWaterDelay     = 100 * time.Millisecond
	lowWaterIdleDelay = time.Second
)

// readInterval spaces out the reads of a unix socket, which has no low-water mark: after a
// read that did not fill the reader's buffer, the next waits until 2 ms have passed.
const readInterval = 2 * time.Millisecond

// relayDialer dials the endpoint's TCP address (lowWaterConn) or unix socket (the node
// agent's local Hubble server, which streams flows one message at a time as Relay does:
// coalescingConn).
func relayDialer(endpoint string, delay, idleDelay time.Duration) grpc.DialOption {
	socket, unix := unixSocket(endpoint)
	return grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) {
		var d net.Dialer
		if unix {
			// gRPC hands a custom dialer the whole target for these schemes.
			conn, err := d.DialContext(ctx, "unix", socket)
			if err != nil {
				return nil, err
			}
			return &coalescingConn{Conn: conn, interval: readInterval}, nil
		}
		conn, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return nil, err
		}
		return newLowWaterConn(conn.(*net.TCPConn), lowWater, delay, idleDelay)
	})
}

// lowWaterConn is a TCP connection with a receive low-water mark, whose reads stop waiting
// for the mark after a delay and take what has arrived. It embeds net.Conn, not *net.TCPConn:
// TCPConn's WriteTo would let io.Copy read past Read and wait for the mark without a deadline.
type lowWaterConn struct {
	net.Conn
	delay, idleDelay time.Duration
}

func newLowWaterConn(conn *net.TCPConn, mark int, delay, idleDelay time.Duration) (net.Conn, error) {
	raw, err := conn.SyscallConn()
	if err != nil {
		conn.Close()
		return nil, err
	}
	var serr error
	if err := raw.Control(func(fd uintptr) { serr = setLowWater(fd, mark) }); err != nil {
		serr = err
	}
	if serr != nil {
		conn.Close()
		return nil, fmt.Errorf("setting the receive low-water mark: %w", serr)
	}
	return &lowWaterConn{Conn: conn, delay: delay, idleDelay: idleDelay}, nil
}

// Read returns what has arrived at once (the socket is non-blocking, and the mark only holds
// back the wake-up of a reader that found nothing); a reader that waits is woken by the mark
// or after the delay, whichever comes first. A wait that ends with nothing at all to read
// is followed by one twice as long, up to the idle delay.
func (c *lowWaterConn) Read(p []byte) (int, error) {
	for delay := c.delay; ; delay = min(2*delay, c.idleDelay) {
		if err := c.SetReadDeadline(time.Now().Add(delay)); err != nil {
			return 0, err
		}
		n, err := c.Conn.Read(p)
		if n > 0 || !errors.Is(err, os.ErrDeadlineExceeded) {
			return n, err
		}
	}
}

// coalescingConn is a connection whose reads, after one that did not fill the reader's
// buffer, wait until interval has passed since it. A read that fills the buffer (flows
// arriving faster than that) is followed by the next at once, so throughput is not capped,
// and an idle connection blocks in its read as usual.
type coalescingConn struct {
	net.Conn
	interval time.Duration
	last     time.Time // end of the previous read
	short    bool      // the previous read did not fill its buffer
}

// Read is called by one goroutine at a time (gRPC's transport reader), as net.Conn allows.
func (c *coalescingConn) Read(p []byte) (int, error) {
	if c.short {
		if wait := c.interval - time.Since(c.last); wait > 0 {
			time.Sleep(wait)
		}
	}
	n, err := c.Conn.Read(p)
	c.last, c.short = time.Now(), n < len(p)
	return n, err
}

// unixSocket is the socket address of a unix: or unix-abstract: endpoint (gRPC's naming).
func unixSocket(endpoint string) (string, bool) {
	if name, ok := strings.CutPrefix(endpoint, "unix-abstract:"); ok {
		return "@" + name, true
	}
	if path, ok := strings.CutPrefix(endpoint, "unix://"); ok {
		return path, true
	}
	return strings.CutPrefix(endpoint, "unix:")
}

// joiningCredentials are the transport credentials configgrpc would use for cfg (TLS unless
// it is insecure, and for an https:// endpoint), with Relay's one-message DATA frames joined
// after TLS (internal/http2merge): gRPC then handles a few frames per read instead of one
// per flow.
func joiningCredentials(ctx context.Context, cfg *Config) (grpc.DialOption, error) {
	tlsCfg, err := cfg.TLS.LoadTLSConfig(ctx)
	if err != nil {
		return nil, err
	}
	creds := insecure.NewCredentials()
	if tlsCfg != nil {
		creds = credentials.NewTLS(tlsCfg)
	} else if strings.HasPrefix(cfg.Endpoint, "https://") {
		creds = credentials.NewTLS(&tls.Config{})
	}
	return grpc.WithTransportCredentials(http2merge.Credentials(creds)), nil
}
