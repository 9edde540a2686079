package devcloud

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"go.uber.org/zap/zaptest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"

	cloudv1 "github.com/kestrelai/otelcol-kestrel/api/cloud/v1"
	serverv1 "github.com/kestrelai/otelcol-kestrel/api/server/v1"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const testTenant = "acme"

// testCerts generates a certificate directory once per test.
func testCerts(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "certs")
	require.NoError(t, GenerateCerts(dir, CertOptions{Tenant: testTenant}))
	return dir
}

// startServer starts a devcloud on loopback and stops it when the test ends.
func startServer(t *testing.T, cfg Config) *Server {
	t.Helper()
	if cfg.CertsDir == "" {
		cfg.CertsDir = testCerts(t)
	}
	if cfg.DrainTimeout == 0 {
		cfg.DrainTimeout = 2 * time.Second
	}
	s, err := New(cfg, zaptest.NewLogger(t))
	require.NoError(t, err)
	require.NoError(t, s.Start())
	t.Cleanup(s.Kill)
	return s
}

// dial connects with the client certificate from certsDir (and trusts its CA).
func dial(t *testing.T, s *Server, certsDir string, opts ...grpc.DialOption) *grpc.ClientConn {
	t.Helper()
	cert, err := tls.LoadX509KeyPair(filepath.Join(certsDir, ClientCertFile), filepath.Join(certsDir, ClientKeyFile))
	require.NoError(t, err)
	caPEM, err := os.ReadFile(filepath.Join(s.cfg.CertsDir, CACertFile))
	require.NoError(t, err)
	pool := x509.NewCertPool()
	require.True(t, pool.AppendCertsFromPEM(caPEM))
	creds := credentials.NewTLS(&tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: pool, MinVersion: tls.VersionTLS12})
	conn, err := grpc.NewClient(s.Addr(), append([]grpc.DialOption{grpc.WithTransportCredentials(creds)}, opts...)...)
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	return conn
}

// authCtx carries the stream-open metadata of a well-behaved operator.
func authCtx(t *testing.T, ctx context.Context, certsDir string) context.Context {
	t.Helper()
	tok, err := os.ReadFile(filepath.Join(certsDir, TokenFile))
	require.NoError(t, err)
	return metadata.AppendToOutgoingContext(ctx, authorizationKey, "Bearer "+string(tok), tenantKey, testTenant)
}

func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

type client struct {
	conn   *grpc.ClientConn
	stream cloudv1.StreamServiceClient
	token  serverv1.AutonpServerServiceClient
	ctx    context.Context // authenticated
}

func newClient(t *testing.T, s *Server, opts ...grpc.DialOption) *client {
	t.Helper()
	conn := dial(t, s, s.cfg.CertsDir, opts...)
	return &client{
		conn:   conn,
		stream: cloudv1.NewStreamServiceClient(conn),
		token:  serverv1.NewAutonpServerServiceClient(conn),
		ctx:    authCtx(t, testCtx(t), s.cfg.CertsDir),
	}
}

const operatorID = ClientCommonName + "/" + testTenant
