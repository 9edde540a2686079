package hubblereceiver // import "github.com/kestrelai/otelcol-kestrel/receiver/hubblereceiver"

import (
	"context"
	"crypto/tls"
	"net"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/kestrelai/otelcol-kestrel/internal/http2merge"
)

// readInterval is how long the connection to Relay lets data collect after a read that found
// little of it. Relay forwards flows one gRPC message at a time as the nodes report them, so
// a connection read as soon as it is readable wakes its reader (and the goroutine it hands
// each message to) for every flow or two: at 20,000 flows/s that costs more CPU than
// decoding and aggregating the flows. Reading at most every 2 ms gets a few dozen flows per
// read and wake-up; flows are aggregated over 30 s, so the delay changes nothing downstream.
const readInterval = 2 * time.Millisecond

// coalescingConn is a connection whose reads, after one that did not fill the reader's
// buffer, wait until readInterval has passed since it. A read that fills the buffer (Relay
// sending faster than that) is followed by the next at once, so throughput is not capped,
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

// coalescingDialer dials the endpoint's TCP address or unix socket and spaces out the reads
// of the connection: the node agent's local Hubble server streams flows over its unix socket
// one message at a time just as Relay does over TCP.
func coalescingDialer(endpoint string, interval time.Duration) grpc.DialOption {
	socket, unix := unixSocket(endpoint)
	return grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) {
		var d net.Dialer
		var conn net.Conn
		var err error
		if unix {
			// gRPC hands a custom dialer the whole target for these schemes.
			conn, err = d.DialContext(ctx, "unix", socket)
		} else {
			conn, err = d.DialContext(ctx, "tcp", addr)
		}
		if err != nil {
			return nil, err
		}
		return &coalescingConn{Conn: conn, interval: interval}, nil
	})
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
// per flow. The option given to ToClientConn replaces configgrpc's own.
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
