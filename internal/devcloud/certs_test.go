package devcloud

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func readCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	block, _ := pem.Decode(data)
	require.NotNil(t, block)
	cert, err := x509.ParseCertificate(block.Bytes)
	require.NoError(t, err)
	return cert
}

func TestGenerateCertsLayout(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "nested", "certs")
	require.NoError(t, GenerateCerts(dir, CertOptions{Tenant: "t1", TokenTTL: time.Hour}))

	for _, name := range CertFiles {
		fi, err := os.Stat(filepath.Join(dir, name))
		require.NoError(t, err, name)
		assert.Positive(t, fi.Size(), name)
	}
	for _, secret := range []string{CAKeyFile, ServerKeyFile, ClientKeyFile, TokenFile, TokenKeyFile} {
		fi, err := os.Stat(filepath.Join(dir, secret))
		require.NoError(t, err)
		assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm(), secret)
	}

	ca := readCert(t, filepath.Join(dir, CACertFile))
	assert.True(t, ca.IsCA)
	assert.WithinDuration(t, time.Now().Add(caValidity), ca.NotAfter, time.Hour)
	pool := x509.NewCertPool()
	pool.AddCert(ca)

	server := readCert(t, filepath.Join(dir, ServerCertFile))
	_, err := server.Verify(x509.VerifyOptions{Roots: pool, DNSName: "localhost", KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
	require.NoError(t, err)
	assert.True(t, server.IPAddresses[0].Equal(net.ParseIP("127.0.0.1")))
	assert.WithinDuration(t, time.Now().Add(leafValidity), server.NotAfter, time.Hour)

	client := readCert(t, filepath.Join(dir, ClientCertFile))
	assert.Equal(t, ClientCommonName, client.Subject.CommonName)
	_, err = client.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	require.NoError(t, err)
	assert.NotEqual(t, server.SerialNumber, client.SerialNumber)

	key, err := os.ReadFile(filepath.Join(dir, TokenKeyFile))
	require.NoError(t, err)
	tok, err := os.ReadFile(filepath.Join(dir, TokenFile))
	require.NoError(t, err)
	claims, err := parseToken(key, string(tok), false)
	require.NoError(t, err)
	assert.Equal(t, "t1", claims.tenant)
	assert.WithinDuration(t, time.Now().Add(time.Hour), claims.expiry, time.Minute)
}

func TestGenerateCertsRefusesOverwrite(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, ClientKeyFile), []byte("keep me"), 0o600))
	err := GenerateCerts(dir, CertOptions{})
	require.ErrorIs(t, err, ErrExists)
	require.ErrorContains(t, err, "refusing to overwrite")
	require.ErrorContains(t, err, ClientKeyFile)
	data, err := os.ReadFile(filepath.Join(dir, ClientKeyFile))
	require.NoError(t, err)
	assert.Equal(t, "keep me", string(data))
	_, err = os.Stat(filepath.Join(dir, CACertFile))
	assert.ErrorIs(t, err, os.ErrNotExist, "nothing may be written when refusing")
}

func TestGenerateCertsCustomHosts(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, GenerateCerts(dir, CertOptions{Hosts: []string{"devcloud.internal", "10.0.0.7"}}))
	server := readCert(t, filepath.Join(dir, ServerCertFile))
	assert.Equal(t, []string{"devcloud.internal"}, server.DNSNames)
	require.Len(t, server.IPAddresses, 1)
	assert.True(t, server.IPAddresses[0].Equal(net.ParseIP("10.0.0.7")))
}

func TestIssueClientCert(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, GenerateCerts(dir, CertOptions{}))
	out := t.TempDir()
	certPath, keyPath := filepath.Join(out, "tls.crt"), filepath.Join(out, "tls.key")
	// Existing files are replaced, as a certificate rotation does.
	require.NoError(t, os.WriteFile(certPath, []byte("old"), 0o600))
	serial, err := IssueClientCert(dir, certPath, keyPath)
	require.NoError(t, err)

	_, err = tls.LoadX509KeyPair(certPath, keyPath)
	require.NoError(t, err, "the key belongs to the certificate")
	pool := x509.NewCertPool()
	pool.AddCert(readCert(t, filepath.Join(dir, CACertFile)))
	client := readCert(t, certPath)
	_, err = client.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	require.NoError(t, err)
	assert.Equal(t, ClientCommonName, client.Subject.CommonName)
	assert.Equal(t, client.SerialNumber.Text(16), serial)
	assert.NotEqual(t, readCert(t, filepath.Join(dir, ClientCertFile)).SerialNumber, client.SerialNumber)
	fi, err := os.Stat(keyPath)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())

	_, err = IssueClientCert(t.TempDir(), certPath, keyPath)
	require.ErrorIs(t, err, os.ErrNotExist)
}

func TestIssueToken(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, GenerateCerts(dir, CertOptions{TokenTTL: -time.Hour}))
	key, err := os.ReadFile(filepath.Join(dir, TokenKeyFile))
	require.NoError(t, err)

	initial, err := os.ReadFile(filepath.Join(dir, TokenFile))
	require.NoError(t, err)
	_, err = parseToken(key, string(initial), false)
	require.EqualError(t, err, "token expired")
	claims, err := parseToken(key, string(initial), true)
	require.NoError(t, err)
	assert.Equal(t, DefaultCertOptions().Tenant, claims.tenant)

	tok, err := IssueToken(dir, "other", time.Minute)
	require.NoError(t, err)
	claims, err = parseToken(key, tok, false)
	require.NoError(t, err)
	assert.Equal(t, "other", claims.tenant)

	_, err = IssueToken(dir, "", time.Minute)
	require.Error(t, err)
	_, err = IssueToken(t.TempDir(), "x", time.Minute)
	require.ErrorIs(t, err, os.ErrNotExist)

	_, err = parseToken([]byte("another key"), tok, false)
	require.EqualError(t, err, "bad token signature")
}
