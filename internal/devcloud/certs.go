package devcloud

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Names of the files GenerateCerts writes into its directory.
const (
	CACertFile     = "ca.crt"
	CAKeyFile      = "ca.key"
	ServerCertFile = "server.crt"
	ServerKeyFile  = "server.key"
	ClientCertFile = "client.crt"
	ClientKeyFile  = "client.key"
	TokenFile      = "token"
	TokenKeyFile   = "token.key"
)

// CertFiles lists every file GenerateCerts writes, in the order it writes them.
var CertFiles = []string{
	CACertFile, CAKeyFile, ServerCertFile, ServerKeyFile,
	ClientCertFile, ClientKeyFile, TokenFile, TokenKeyFile,
}

const (
	// ClientCommonName is the subject CN of the generated operator client certificate.
	ClientCommonName = "kestrel-operator-dev"
	// ClusterSubject is the JWT "sub" claim of every token devcloud issues.
	ClusterSubject = "dev-cluster"

	defaultTokenTTL = 24 * time.Hour
	caValidity      = 10 * 365 * 24 * time.Hour
	leafValidity    = 365 * 24 * time.Hour
)

// ErrExists is wrapped by the error GenerateCerts returns when some of its files exist.
var ErrExists = errors.New("refusing to overwrite existing files")

// CertOptions tunes GenerateCerts. Unset fields take their value from DefaultCertOptions.
type CertOptions struct {
	Tenant   string        // JWT "tenant" claim
	TokenTTL time.Duration // JWT "exp" = now+TokenTTL; negative = already expired
	Hosts    []string      // server cert SANs
}

// DefaultCertOptions returns the options GenerateCerts uses for unset fields: tenant
// "dev-tenant", a 24h token and a server certificate for 127.0.0.1, ::1 and localhost.
func DefaultCertOptions() CertOptions {
	return CertOptions{Tenant: "dev-tenant", TokenTTL: defaultTokenTTL, Hosts: []string{"127.0.0.1", "::1", "localhost"}}
}

// GenerateCerts writes a fresh CA, a server and a client certificate (ECDSA P-256), an
// HMAC token key and a token signed with it into dir. It refuses to overwrite any of
// those files (ErrExists) so that a mistyped directory cannot destroy a working setup.
func GenerateCerts(dir string, opts CertOptions) error {
	def := DefaultCertOptions()
	if opts.Tenant == "" {
		opts.Tenant = def.Tenant
	}
	if opts.TokenTTL == 0 {
		opts.TokenTTL = def.TokenTTL
	}
	if len(opts.Hosts) == 0 {
		opts.Hosts = def.Hosts
	}
	var existing []string
	for _, name := range CertFiles {
		if _, err := os.Lstat(filepath.Join(dir, name)); err == nil {
			existing = append(existing, name)
		} else if !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	if len(existing) > 0 {
		return fmt.Errorf("%w in %s: %s", ErrExists, dir, strings.Join(existing, ", "))
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}

	now := time.Now()
	caKey, caCert, err := newCA(now)
	if err != nil {
		return err
	}
	caKeyPEM, err := pemKey(caKey)
	if err != nil {
		return err
	}
	serverTmpl, err := certTemplate(now, leafValidity, "kestrel-devcloud")
	if err != nil {
		return err
	}
	for _, h := range opts.Hosts {
		if ip := net.ParseIP(h); ip != nil {
			serverTmpl.IPAddresses = append(serverTmpl.IPAddresses, ip)
		} else {
			serverTmpl.DNSNames = append(serverTmpl.DNSNames, h)
		}
	}
	serverKey, serverDER, err := newLeaf(serverTmpl, x509.ExtKeyUsageServerAuth, caCert, caKey)
	if err != nil {
		return err
	}
	clientTmpl, err := certTemplate(now, leafValidity, ClientCommonName)
	if err != nil {
		return err
	}
	clientKey, clientDER, err := newLeaf(clientTmpl, x509.ExtKeyUsageClientAuth, caCert, caKey)
	if err != nil {
		return err
	}
	hmacKey := make([]byte, 32)
	if _, err := rand.Read(hmacKey); err != nil {
		return err
	}
	token, err := signToken(hmacKey, opts.Tenant, opts.TokenTTL, now)
	if err != nil {
		return err
	}

	files := []struct {
		name string
		data []byte
		mode fs.FileMode
	}{
		{CACertFile, pemCert(caCert.Raw), 0o644},
		{CAKeyFile, caKeyPEM, 0o600},
		{ServerCertFile, pemCert(serverDER), 0o644},
		{ServerKeyFile, serverKey, 0o600},
		{ClientCertFile, pemCert(clientDER), 0o644},
		{ClientKeyFile, clientKey, 0o600},
		{TokenFile, []byte(token), 0o600},
		{TokenKeyFile, hmacKey, 0o600},
	}
	for _, f := range files {
		if err := writeNew(filepath.Join(dir, f.name), f.data, f.mode); err != nil {
			return err
		}
	}
	return nil
}

// IssueToken mints a token for tenant signed with dir/token.key. A negative ttl yields an
// already expired token (useful for renewal tests).
func IssueToken(dir string, tenant string, ttl time.Duration) (string, error) {
	key, err := os.ReadFile(filepath.Join(dir, TokenKeyFile)) //nolint:gosec // dir is the certificates directory the caller chose
	if err != nil {
		return "", err
	}
	return signToken(key, tenant, ttl, time.Now())
}

// IssueClientCert writes a new operator client certificate (CN ClientCommonName) signed by
// dir's CA to certPath and its key to keyPath, replacing existing files, and returns the
// serial as Status reports it. Tests use it to rotate the operator's certificate.
func IssueClientCert(dir, certPath, keyPath string) (serial string, err error) {
	ca, err := tls.LoadX509KeyPair(filepath.Join(dir, CACertFile), filepath.Join(dir, CAKeyFile))
	if err != nil {
		return "", err
	}
	caKey, ok := ca.PrivateKey.(*ecdsa.PrivateKey)
	if !ok {
		return "", fmt.Errorf("devcloud: the CA key in %s is not ECDSA", dir)
	}
	tmpl, err := certTemplate(time.Now(), leafValidity, ClientCommonName)
	if err != nil {
		return "", err
	}
	keyPEM, der, err := newLeaf(tmpl, x509.ExtKeyUsageClientAuth, ca.Leaf, caKey)
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(certPath, pemCert(der), 0o644); err != nil { //nolint:gosec // a certificate is public, readable like the ones GenerateCerts writes
		return "", err
	}
	if err := os.WriteFile(keyPath, keyPEM, 0o600); err != nil {
		return "", err
	}
	return tmpl.SerialNumber.Text(16), nil
}

func signToken(key []byte, tenant string, ttl time.Duration, now time.Time) (string, error) {
	if tenant == "" {
		return "", errors.New("token tenant must not be empty")
	}
	jti := make([]byte, 16)
	if _, err := rand.Read(jti); err != nil {
		return "", err
	}
	claims := jwt.MapClaims{
		"tenant": tenant,
		"sub":    ClusterSubject,
		"iat":    now.Unix(),
		"exp":    now.Add(ttl).Unix(),
		"jti":    hex.EncodeToString(jti),
	}
	return jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(key)
}

func newCA(now time.Time) (*ecdsa.PrivateKey, *x509.Certificate, error) {
	tmpl, err := certTemplate(now, caValidity, "kestrel-devcloud CA")
	if err != nil {
		return nil, nil, err
	}
	tmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature
	tmpl.IsCA = true
	tmpl.MaxPathLenZero = true
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	cert, err := x509.ParseCertificate(der)
	return key, cert, err
}

func certTemplate(now time.Time, validity time.Duration, cn string) (*x509.Certificate, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, err
	}
	return &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: cn, Organization: []string{"Kestrel devcloud"}},
		// Backdated a little so a peer with a slightly slow clock accepts it at once.
		NotBefore:             now.Add(-time.Minute),
		NotAfter:              now.Add(validity),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
	}, nil
}

// newLeaf signs a fresh P-256 key for tmpl with the CA and returns the PEM key and DER cert.
func newLeaf(tmpl *x509.Certificate, usage x509.ExtKeyUsage, ca *x509.Certificate, caKey *ecdsa.PrivateKey) (keyPEM, der []byte, err error) {
	tmpl.ExtKeyUsage = []x509.ExtKeyUsage{usage}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	der, err = x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return nil, nil, err
	}
	keyPEM, err = pemKey(key)
	return keyPEM, der, err
}

func pemCert(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func pemKey(key *ecdsa.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// writeNew uses O_EXCL so a file created concurrently is never clobbered either.
func writeNew(path string, data []byte, mode fs.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode) //nolint:gosec // a path in the certificates directory the caller chose
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
