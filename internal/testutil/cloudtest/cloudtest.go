// Package cloudtest runs the reference cloud (devcloud) over mTLS for tests: with generated
// certificates, on an address kept for the whole test so that it can restart where its
// clients reconnect, with the kestrel_command configuration that reaches it and waits for
// what it receives.
package cloudtest // import "github.com/kestrelai/otelcol-kestrel/internal/testutil/cloudtest"

import (
	"context"
	"net"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/zap/zaptest"
	"google.golang.org/protobuf/proto"

	"github.com/kestrelai/otelcol-kestrel/internal/cloudconn"
	"github.com/kestrelai/otelcol-kestrel/internal/devcloud"
	"github.com/kestrelai/otelcol-kestrel/internal/testutil"
)

// Tenant is the tenant of the certificates and token that NewCerts makes by default.
const Tenant = "acme"

// NewCerts generates a devcloud certificate directory (CA, server and client certificates,
// token) in a temporary directory; the tenant is Tenant unless opts names one.
func NewCerts(tb testing.TB, opts devcloud.CertOptions) string {
	tb.Helper()
	if opts.Tenant == "" {
		opts.Tenant = Tenant
	}
	dir := filepath.Join(tb.TempDir(), "certs")
	require.NoError(tb, devcloud.GenerateCerts(dir, opts))
	return dir
}

// ConnectionConfig is the kestrel_command configuration that reaches the cloud at endpoint
// with the certificates in certs and reconnects quickly, as a confmap: the tests of the
// extension, of the components that use it and of the whole collector start from it.
func ConnectionConfig(certs, endpoint string) map[string]any {
	return map[string]any{
		"endpoint": endpoint,
		"tls": map[string]any{
			"ca_file":   filepath.Join(certs, devcloud.CACertFile),
			"cert_file": filepath.Join(certs, devcloud.ClientCertFile),
			"key_file":  filepath.Join(certs, devcloud.ClientKeyFile),
		},
		"token":     map[string]any{"file": filepath.Join(certs, devcloud.TokenFile)},
		"reconnect": map[string]any{"initial_interval": "20ms", "max_interval": "200ms"},
	}
}

// Cloud is a devcloud (the embedded Server) on a loopback address that the Cloud keeps for
// the whole test, so that Restart brings the cloud back on the same address even while
// other packages' tests take ports: a client configured once reconnects to it.
type Cloud struct {
	*devcloud.Server
	// Certs is the certificate directory the server and its clients use.
	Certs string

	cfg  devcloud.Config
	addr *keptAddress
}

// Start starts a devcloud with cfg, with certificates from NewCerts unless
// cfg.CertsDir is set, heartbeats every 100 ms (so liveness paths run during tests) unless
// cfg.HeartbeatInterval is set, and a 5 s drain unless cfg.DrainTimeout is set. cfg.Listen
// is ignored: the Cloud picks the address. Everything is killed when the test ends.
func Start(tb testing.TB, cfg devcloud.Config) *Cloud {
	tb.Helper()
	if cfg.CertsDir == "" {
		cfg.CertsDir = NewCerts(tb, devcloud.CertOptions{})
	}
	if cfg.HeartbeatInterval == 0 {
		cfg.HeartbeatInterval = 100 * time.Millisecond
	}
	if cfg.DrainTimeout == 0 {
		cfg.DrainTimeout = 5 * time.Second
	}
	c := &Cloud{Certs: cfg.CertsDir, cfg: cfg, addr: keepAddress(tb)}
	c.Restart(tb)
	return c
}

// Restart starts a new server on the Cloud's address, with the same configuration; the
// previous one must have been stopped (Stop) or killed (Kill). Like a restarted cloud it
// knows nothing of what its predecessor received, except, with cfg.RecordDir, the
// acknowledged sequences it rebuilds from the record files.
func (c *Cloud) Restart(tb testing.TB) {
	tb.Helper()
	cfg := c.cfg
	cfg.Listener = c.addr.listener()
	s, err := devcloud.New(cfg, zaptest.NewLogger(tb).Named("devcloud"))
	require.NoError(tb, err)
	require.NoError(tb, s.Start())
	tb.Cleanup(s.Kill)
	c.Server = s
}

// ConnectionConfig is the kestrel_command configuration that reaches this cloud.
func (c *Cloud) ConnectionConfig() map[string]any { return ConnectionConfig(c.Certs, c.Addr()) }

// WaitCommitted waits until the one operator connected has sent its InventoryCommit on
// its current StreamData.
func (c *Cloud) WaitCommitted(tb testing.TB) {
	tb.Helper()
	require.NoError(tb, c.WaitStatus(waitCtx(tb), func(st devcloud.Status) bool {
		return len(st.Operators) == 1 && st.Operators[0].Committed
	}))
}

// Payloads returns the payloads received so far, unwrapped from their envelopes, in order.
func (c *Cloud) Payloads() []proto.Message {
	var out []proto.Message
	for _, r := range c.Records() {
		if r.Payload != nil {
			out = append(out, r.Payload)
		}
	}
	return out
}

// WaitPayload waits until a payload satisfies pred and returns it; what names it in the
// failure message.
func (c *Cloud) WaitPayload(tb testing.TB, what string, pred func(proto.Message) bool) proto.Message {
	tb.Helper()
	var found proto.Message
	require.Eventually(tb, func() bool {
		for _, m := range c.Payloads() {
			if pred(m) {
				found = m
				return true
			}
		}
		return false
	}, testutil.WaitFor, testutil.Tick, "the cloud never received %s", what)
	return found
}

// WaitPayloads waits until the received payloads of want's type (e.g. &cloudv1.Flow{})
// satisfy done, and returns them. Each must have arrived on stream: StreamData can carry
// every type, so arriving is not enough.
func (c *Cloud) WaitPayloads(tb testing.TB, stream cloudconn.Stream, want proto.Message, done func([]proto.Message) bool) []proto.Message {
	tb.Helper()
	require.NoError(tb, c.WaitFor(waitCtx(tb), func(records []devcloud.Record) bool { return done(payloadsOf(records, want)) }))
	records := c.Records()
	for _, r := range records {
		if sameType(r, want) {
			require.Equalf(tb, stream, r.Stream, "a %T arrived on the wrong stream", want)
		}
	}
	return payloadsOf(records, want)
}

// PayloadsOn returns the payloads of the records that arrived on stream, in order.
func PayloadsOn(records []devcloud.Record, stream cloudconn.Stream) []proto.Message {
	var out []proto.Message
	for _, r := range records {
		if r.Stream == stream {
			out = append(out, r.Payload)
		}
	}
	return out
}

func payloadsOf(records []devcloud.Record, want proto.Message) []proto.Message {
	var out []proto.Message
	for _, r := range records {
		if sameType(r, want) {
			out = append(out, r.Payload)
		}
	}
	return out
}

func sameType(r devcloud.Record, want proto.Message) bool {
	return r.Payload != nil && r.Payload.ProtoReflect().Type() == want.ProtoReflect().Type()
}

func waitCtx(tb testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), testutil.WaitFor)
	tb.Cleanup(cancel)
	return ctx
}

// keptAddress holds one listening socket for the whole test and hands its connections to
// the server currently attached. Connections that arrive while none is attached are
// closed at once, as a cloud that is down refuses them.
type keptAddress struct {
	lis  net.Listener
	done chan struct{} // closed when the accept loop has returned

	mu  sync.Mutex
	cur *handoff
}

func keepAddress(tb testing.TB) *keptAddress {
	tb.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(tb, err)
	a := &keptAddress{lis: lis, done: make(chan struct{})}
	go a.accept()
	tb.Cleanup(func() {
		_ = lis.Close()
		<-a.done
	})
	return a
}

func (a *keptAddress) accept() {
	defer close(a.done)
	for {
		conn, err := a.lis.Accept()
		if err != nil {
			return
		}
		a.mu.Lock()
		h := a.cur
		a.mu.Unlock()
		if h == nil {
			_ = conn.Close()
			continue
		}
		select {
		case h.conns <- conn:
		case <-h.closed:
			_ = conn.Close()
		}
	}
}

// listener attaches a new server's listener; closing it detaches the server and leaves
// the address open.
func (a *keptAddress) listener() net.Listener {
	h := &handoff{a: a, conns: make(chan net.Conn), closed: make(chan struct{})}
	a.mu.Lock()
	a.cur = h
	a.mu.Unlock()
	return h
}

type handoff struct {
	a      *keptAddress
	conns  chan net.Conn
	closed chan struct{}
	once   sync.Once
}

func (h *handoff) Accept() (net.Conn, error) {
	select {
	case c := <-h.conns:
		return c, nil
	case <-h.closed:
		return nil, net.ErrClosed
	}
}

func (h *handoff) Close() error {
	h.once.Do(func() {
		close(h.closed)
		h.a.mu.Lock()
		if h.a.cur == h {
			h.a.cur = nil
		}
		h.a.mu.Unlock()
	})
	return nil
}

func (h *handoff) Addr() net.Addr { return h.a.lis.Addr() }
