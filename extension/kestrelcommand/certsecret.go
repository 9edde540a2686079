package kestrelcommand // import "github.com/kestrelai/otelcol-kestrel/extension/kestrelcommand"

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
)

// SecretConfig names the Secret that holds the client certificate (the one a Helm install
// mounts read-only at tls::cert_file and tls::key_file). Set, a validated renewal patches
// its two keys through the Kubernetes API; the kubelet then refreshes the mounted files and
// the TLS file watch reconnects with them.
type SecretConfig struct {
	SecretRef `mapstructure:",squash"`
	// CertKey and KeyKey are the Secret's keys of the certificate and the key.
	CertKey string `mapstructure:"cert_key"`
	KeyKey  string `mapstructure:"key_key"`

	// prevent unkeyed literal initialization
	_ struct{}
}

func (s *SecretConfig) validate() []error {
	const p = "certificate_renewal::secret::"
	errs := s.SecretRef.validate(p)
	errs = append(errs, validateSecretKey(p+"cert_key", s.CertKey)...)
	errs = append(errs, validateSecretKey(p+"key_key", s.KeyKey)...)
	if s.CertKey == s.KeyKey {
		errs = append(errs, fmt.Errorf("%scert_key and %skey_key must differ, both are %q", p, p, s.CertKey))
	}
	return errs
}

// writeCertSecret writes a renewed pair into the client-certificate Secret: both keys in
// one guarded patch (see secretStore).
func (e *kestrelCommand) writeCertSecret(ctx context.Context, certPEM, keyPEM []byte) error {
	sc := e.cfg.CertificateRenewal.Secret
	return e.certSecret.write(ctx, func(*corev1.Secret) map[string][]byte {
		return map[string][]byte{sc.CertKey: certPEM, sc.KeyKey: keyPEM}
	})
}
