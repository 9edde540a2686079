package kestrelcommand

import (
	"encoding/base64"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	cloudv1 "github.com/kestrelai/otelcol-kestrel/api/cloud/v1"
	"github.com/kestrelai/otelcol-kestrel/internal/devcloud"
	"github.com/kestrelai/otelcol-kestrel/internal/testutil/cloudtest"
)

// renewalFixture is an extension configured with certs' CA and writable client files, and
// a new pair issued by the same CA.
func renewalFixture(t *testing.T) (*kestrelCommand, *cloudv1.CertificateRenewalRequest, string) {
	t.Helper()
	certs := cloudtest.NewCerts(t, devcloud.CertOptions{})
	dir := t.TempDir()
	cfg := createDefaultConfig().(*Config)
	cfg.TLS.CAFile = filepath.Join(certs, devcloud.CACertFile)
	cfg.TLS.CertFile, cfg.TLS.KeyFile = filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	issueClientCert(t, certs, cfg.TLS.CertFile, cfg.TLS.KeyFile)
	newCert, newKey := filepath.Join(dir, "new.crt"), filepath.Join(dir, "new.key")
	issueClientCert(t, certs, newCert, newKey)
	read := func(p string) string {
		b, err := os.ReadFile(p)
		require.NoError(t, err)
		return base64.StdEncoding.EncodeToString(b)
	}
	req := &cloudv1.CertificateRenewalRequest{RequestId: "r", ClientCert: read(newCert), ClientKey: read(newKey), CaCert: read(cfg.TLS.CAFile)}
	return &kestrelCommand{cfg: cfg}, req, newCert
}

func TestCheckRenewal(t *testing.T) {
	e, req, _ := renewalFixture(t)
	_, _, err := e.checkRenewal(req, time.Now())
	require.NoError(t, err)

	_, _, err = e.checkRenewal(req, time.Now().Add(-time.Hour))
	require.ErrorContains(t, err, "is not valid until", "a certificate from the future beyond the allowed skew")
	_, _, err = e.checkRenewal(req, time.Now().Add(10*365*24*time.Hour))
	require.ErrorContains(t, err, "expired at")

	bad := proto.Clone(req).(*cloudv1.CertificateRenewalRequest)
	bad.ClientKey = "%%%"
	_, _, err = e.checkRenewal(bad, time.Now())
	require.ErrorContains(t, err, "client_key is not base64")
	bad = proto.Clone(req).(*cloudv1.CertificateRenewalRequest)
	bad.ClientCert, bad.ClientKey = req.ClientKey, req.ClientCert
	_, _, err = e.checkRenewal(bad, time.Now())
	require.ErrorContains(t, err, "the key does not match the certificate, or either is not PEM")

	inline := *e.cfg
	inline.TLS.CertFile, inline.TLS.CertPem = "", "pem"
	_, _, err = (&kestrelCommand{cfg: &inline}).checkRenewal(req, time.Now())
	require.ErrorContains(t, err, "renewal needs tls::cert_file and tls::key_file")
}

func TestWritePair(t *testing.T) {
	e, req, newCert := renewalFixture(t)
	c, k, err := e.checkRenewal(req, time.Now())
	require.NoError(t, err)
	require.NoError(t, e.writePair(c, k))
	got, err := os.ReadFile(e.cfg.TLS.CertFile)
	require.NoError(t, err)
	want, err := os.ReadFile(newCert)
	require.NoError(t, err)
	assert.Equal(t, want, got)
	st, err := os.Stat(e.cfg.TLS.KeyFile)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), st.Mode().Perm(), "the key stays private")
	left, err := filepath.Glob(filepath.Join(filepath.Dir(e.cfg.TLS.CertFile), ".*"))
	require.NoError(t, err)
	assert.Empty(t, left, "no temporary files are left behind")

	// A directory that cannot be written (a mounted Secret) refuses with the reason.
	ro := t.TempDir()
	require.NoError(t, os.Chmod(ro, 0o500))
	t.Cleanup(func() { _ = os.Chmod(ro, 0o700) })
	if os.Geteuid() != 0 {
		e.cfg.TLS.KeyFile = filepath.Join(ro, "tls.key")
		require.ErrorContains(t, e.writePair(c, k), "a read-only mounted Secret?")
	}
}

func FuzzCheckRenewal(f *testing.F) {
	certs := cloudtest.NewCerts(f, devcloud.CertOptions{})
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join(certs, name))
		require.NoError(f, err)
		return base64.StdEncoding.EncodeToString(b)
	}
	f.Add(read(devcloud.ClientCertFile), read(devcloud.ClientKeyFile), read(devcloud.CACertFile))
	f.Add("", "", "")
	f.Add("!!", "LS0t", read(devcloud.ClientCertFile))
	cfg := createDefaultConfig().(*Config)
	cfg.TLS.CAFile = filepath.Join(certs, devcloud.CACertFile)
	cfg.TLS.CertFile, cfg.TLS.KeyFile = "unused.crt", "unused.key"
	e := &kestrelCommand{cfg: cfg}
	f.Fuzz(func(t *testing.T, cert, key, ca string) {
		c, k, err := e.checkRenewal(&cloudv1.CertificateRenewalRequest{ClientCert: cert, ClientKey: key, CaCert: ca}, time.Now())
		if err != nil {
			require.Nil(t, c)
			require.Nil(t, k)
			return
		}
		require.NotEmpty(t, c)
		require.NotEmpty(t, k)
	})
}
