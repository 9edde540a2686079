package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"go.uber.org/zap/zaptest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"

	cloudv1 "github.com/kestrelai/otelcol-kestrel/api/cloud/v1"
	"github.com/kestrelai/otelcol-kestrel/internal/devcloud"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// runCLI runs one command line in-process.
func runCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = run(context.Background(), args, &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestCerts(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "certs")
	code, out, errOut := runCLI(t, "certs", "--out", dir, "--tenant", "acme", "--token-ttl", "1h")
	require.Equal(t, 0, code, errOut)
	for _, name := range devcloud.CertFiles {
		assert.Contains(t, out, filepath.Join(dir, name))
		assert.FileExists(t, filepath.Join(dir, name))
	}
	before, err := os.ReadFile(filepath.Join(dir, devcloud.TokenFile))
	require.NoError(t, err)

	code, _, errOut = runCLI(t, "certs", "--out", dir)
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut, "refusing to overwrite")
	assert.Contains(t, errOut, "--force")

	code, _, errOut = runCLI(t, "certs", "--out", dir, "--force")
	require.Equal(t, 0, code, errOut)
	after, err := os.ReadFile(filepath.Join(dir, devcloud.TokenFile))
	require.NoError(t, err)
	assert.NotEqual(t, before, after)
}

func TestUsageErrors(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{nil, "no command given"},
		{[]string{"bogus"}, `unknown command "bogus"`},
		{[]string{"certs"}, "certs needs --out DIR"},
		{[]string{"certs", "--out", "x", "extra"}, `unexpected argument "extra"`},
		{[]string{"certs", "--token-ttl", "soon"}, "invalid value"},
		{[]string{"serve"}, "serve needs --certs DIR"},
		{[]string{"ctl"}, "ctl needs a subcommand"},
		{[]string{"ctl", "frobnicate"}, `unknown ctl subcommand "frobnicate"`},
		{[]string{"ctl", "request"}, "request needs --type"},
		{[]string{"ctl", "request", "--type", "KubernetesAPIRequest", "--timeout", "0s"}, "--timeout must be positive"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			code, _, errOut := runCLI(t, tt.args...)
			assert.Equal(t, 2, code, errOut)
			assert.Contains(t, errOut, tt.want)
		})
	}
	code, out, _ := runCLI(t, "help")
	assert.Equal(t, 0, code)
	assert.Contains(t, out, "kestrel-devcloud serve")
}

// The usage text names every flag of every command, as their -h output lists them.
func TestUsageListsEveryFlag(t *testing.T) {
	flagLine := regexp.MustCompile(`(?m)^ {2}-(\S+)`)
	for _, cmd := range [][]string{
		{"certs"}, {"serve"}, {"ctl"}, {"ctl", "status"}, {"ctl", "request"}, {"ctl", "metrics-query"}, {"ctl", "integration"},
	} {
		code, _, errOut := runCLI(t, append(cmd, "-h")...)
		require.Equal(t, 0, code, errOut)
		flags := flagLine.FindAllStringSubmatch(errOut, -1)
		require.NotEmpty(t, flags, errOut)
		for _, f := range flags {
			assert.Regexpf(t, `--`+regexp.QuoteMeta(f[1])+`[\s\]]`, usage, "kestrel-devcloud %s -%s", strings.Join(cmd, " "), f[1])
		}
	}
}

func TestServeErrors(t *testing.T) {
	code, _, errOut := runCLI(t, "serve", "--certs", t.TempDir())
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut, "loading server certificate")

	dir := t.TempDir()
	require.NoError(t, devcloud.GenerateCerts(dir, devcloud.CertOptions{}))
	code, _, errOut = runCLI(t, "serve", "--certs", dir, "--admin", "0.0.0.0:7070")
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut, "not a loopback address")
}

// syncBuffer lets the test read what serve logs while it runs.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestServeRunsUntilCancelled(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, devcloud.GenerateCerts(dir, devcloud.CertOptions{}))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var logs syncBuffer
	done := make(chan int)
	go func() {
		done <- run(ctx, []string{"serve", "--certs", dir, "--listen", "127.0.0.1:0", "--admin", "", "--record", t.TempDir()}, &logs, &logs)
	}()
	require.Eventually(t, func() bool { return strings.Contains(logs.String(), "devcloud serving") }, 10*time.Second, 10*time.Millisecond)
	cancel()
	select {
	case code := <-done:
		assert.Equal(t, 0, code, logs.String())
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not stop")
	}
	assert.Contains(t, logs.String(), "stopped")
}

// startDevcloud runs a devcloud in-process with an admin API.
func startDevcloud(t *testing.T) (srv *devcloud.Server, certsDir string) {
	t.Helper()
	dir := t.TempDir()
	require.NoError(t, devcloud.GenerateCerts(dir, devcloud.CertOptions{Tenant: "acme"}))
	srv, err := devcloud.New(devcloud.Config{CertsDir: dir, AdminListen: "127.0.0.1:0"}, zaptest.NewLogger(t))
	require.NoError(t, err)
	require.NoError(t, srv.Start())
	t.Cleanup(srv.Kill)
	return srv, dir
}

// connectOperator opens StreamControl like an operator and answers KubernetesAPIRequests.
func connectOperator(t *testing.T, srv *devcloud.Server, certsDir string) {
	t.Helper()
	cert, err := tls.LoadX509KeyPair(filepath.Join(certsDir, devcloud.ClientCertFile), filepath.Join(certsDir, devcloud.ClientKeyFile))
	require.NoError(t, err)
	caPEM, err := os.ReadFile(filepath.Join(certsDir, devcloud.CACertFile))
	require.NoError(t, err)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	conn, err := grpc.NewClient(srv.Addr(), grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{
		Certificates: []tls.Certificate{cert}, RootCAs: pool, MinVersion: tls.VersionTLS12,
	})))
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	tok, err := os.ReadFile(filepath.Join(certsDir, devcloud.TokenFile))
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+string(tok), "autonp-tenantid", "acme"))
	t.Cleanup(cancel)
	control, err := cloudv1.NewStreamServiceClient(conn).StreamControl(ctx)
	require.NoError(t, err)
	go func() {
		for {
			env, err := control.Recv()
			if err != nil {
				return
			}
			if req := env.GetKubernetesApiRequest(); req != nil {
				_ = control.Send(&cloudv1.StreamControlRequest{Request: &cloudv1.StreamControlRequest_KubernetesApiResponse{
					KubernetesApiResponse: &cloudv1.KubernetesAPIResponse{RequestId: req.GetRequestId(), Results: []*cloudv1.KubernetesAPIResult{
						{ApiPath: req.GetApiPaths()[0], Success: true, StatusCode: 200, ResponseData: `{"gitVersion":"v1.31.0"}`},
					}},
				}})
			}
		}
	}()
	require.Eventually(t, func() bool { return len(srv.Status().Operators) == 1 }, 10*time.Second, 5*time.Millisecond)
}

func TestCtl(t *testing.T) {
	srv, certsDir := startDevcloud(t)
	admin := srv.AdminAddr()

	code, out, errOut := runCLI(t, "ctl", "--admin", admin, "status")
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, out, "No operator has connected yet.")
	assert.Contains(t, out, "Token renewals: 0")

	code, _, errOut = runCLI(t, "ctl", "--admin", admin, "request", "--type", "KubernetesAPIRequest", "--json", `{"apiPaths":["version"]}`)
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut, "unknown or disconnected operator")
	assert.Contains(t, errOut, "HTTP 404")

	connectOperator(t, srv, certsDir)

	code, out, errOut = runCLI(t, "ctl", "--admin", admin, "status")
	require.Equal(t, 0, code, errOut)
	assert.Regexp(t, `kestrel-operator-dev/acme\s+no\s+control\s+yes\s+0`, out)
	assert.Contains(t, out, `tenant acme, certificate "kestrel-operator-dev"`)

	code, out, errOut = runCLI(t, "ctl", "--admin", "http://"+admin+"/", "status", "--json")
	require.Equal(t, 0, code, errOut)
	var st devcloud.Status
	require.NoError(t, json.Unmarshal([]byte(out), &st))
	require.Len(t, st.Operators, 1)
	assert.Equal(t, "kestrel-operator-dev/acme", st.Operators[0].ID)

	code, out, errOut = runCLI(t, "ctl", "--admin", admin, "request", "--type", "KubernetesAPIRequest",
		"--json", `{"apiPaths":["version"]}`, "--operator", "kestrel-operator-dev/acme", "--timeout", "5s")
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, out, "\n  \"results\": [\n")
	var resp struct {
		RequestID string `json:"requestId"`
		Results   []struct {
			ResponseData string `json:"responseData"`
		} `json:"results"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &resp))
	assert.NotEmpty(t, resp.RequestID)
	assert.JSONEq(t, `{"gitVersion":"v1.31.0"}`, resp.Results[0].ResponseData)

	body := filepath.Join(t.TempDir(), "req.json")
	require.NoError(t, os.WriteFile(body, []byte(`{"apiPaths":["healthz"]}`), 0o600))
	code, _, errOut = runCLI(t, "ctl", "--admin", admin, "request", "--type", "KubernetesAPIRequest", "--json", "@"+body)
	require.Equal(t, 0, code, errOut)

	code, _, errOut = runCLI(t, "ctl", "--admin", admin, "request", "--type", "Bogus")
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut, `unknown request type "Bogus"`)

	code, _, errOut = runCLI(t, "ctl", "--admin", admin, "request", "--type", "MetricsQueryRequest", "--timeout", "50ms")
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut, "HTTP 504")
}

func TestCtlUnreachableAdmin(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := lis.Addr().String()
	require.NoError(t, lis.Close()) // nothing listens there any more
	code, _, errOut := runCLI(t, "ctl", "--admin", addr, "status")
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut, "cannot reach the devcloud admin API")
}
