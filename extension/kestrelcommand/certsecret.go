package kestrelcommand // import "github.com/kestrelai/otelcol-kestrel/extension/kestrelcommand"

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/kubernetes"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/util/retry"

	"github.com/kestrelai/otelcol-kestrel/internal/k8sapi"
)

// SecretConfig names the Secret that holds the client certificate (the one a Helm install
// mounts read-only at tls::cert_file and tls::key_file). Set, a validated renewal patches
// its two keys through the Kubernetes API; the kubelet then refreshes the mounted files and
// the TLS file watch reconnects with them.
type SecretConfig struct {
	// Namespace and Name of the Secret; both or neither.
	Namespace string `mapstructure:"namespace"`
	Name      string `mapstructure:"name"`
	// CertKey and KeyKey are the Secret's keys of the certificate and the key.
	CertKey string `mapstructure:"cert_key"`
	KeyKey  string `mapstructure:"key_key"`
	// Timeout bounds the read and the patch of the Secret together.
	Timeout time.Duration `mapstructure:"timeout"`

	// prevent unkeyed literal initialization
	_ struct{}
}

func (s *SecretConfig) enabled() bool { return s.Name != "" }

func (s *SecretConfig) validate() []error {
	const p = "certificate_renewal::secret::"
	var errs []error
	if (s.Namespace == "") != (s.Name == "") {
		errs = append(errs, fmt.Errorf("%snamespace and %sname must be set together, got namespace %q and name %q", p, p, s.Namespace, s.Name))
	}
	for _, msg := range validation.IsDNS1123Subdomain(s.Name) {
		if s.Name != "" {
			errs = append(errs, fmt.Errorf("%sname %q: %s", p, s.Name, msg))
		}
	}
	for _, msg := range validation.IsDNS1123Label(s.Namespace) {
		if s.Namespace != "" {
			errs = append(errs, fmt.Errorf("%snamespace %q: %s", p, s.Namespace, msg))
		}
	}
	for _, k := range []struct{ name, value string }{{"cert_key", s.CertKey}, {"key_key", s.KeyKey}} {
		for _, msg := range validation.IsConfigMapKey(k.value) {
			errs = append(errs, fmt.Errorf("%s%s %q: %s", p, k.name, k.value, msg))
		}
	}
	if s.CertKey == s.KeyKey {
		errs = append(errs, fmt.Errorf("%scert_key and %skey_key must differ, both are %q", p, p, s.CertKey))
	}
	if s.Timeout <= 0 || s.Timeout > 5*time.Minute {
		errs = append(errs, fmt.Errorf("%stimeout must be between 0 and 5m, got %v", p, s.Timeout))
	}
	return errs
}

// secretWriter writes a renewed pair into the client-certificate Secret: one merge patch
// of its two data keys, guarded by the resourceVersion just read, so both keys change
// together and a concurrent writer is never overwritten unseen (a conflict is re-read and
// retried). It needs get and patch on that one Secret, nothing else.
type secretWriter struct {
	cfg     SecretConfig
	secrets corev1client.SecretInterface
}

func newSecretWriter(cfg SecretConfig, kube k8sapi.Config) (*secretWriter, error) {
	rc, err := kube.RestConfig()
	if err != nil {
		return nil, fmt.Errorf("certificate_renewal::secret: %w", err)
	}
	// A hung apiserver must not hold a handler slot beyond the configured timeout.
	rc.Timeout = cfg.Timeout
	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return nil, fmt.Errorf("certificate_renewal::secret: %w", err)
	}
	return &secretWriter{cfg: cfg, secrets: cs.CoreV1().Secrets(cfg.Namespace)}, nil
}

func (w *secretWriter) String() string { return "Secret " + w.cfg.Namespace + "/" + w.cfg.Name }

// write patches the pair into the Secret within the configured timeout.
func (w *secretWriter) write(ctx context.Context, certPEM, keyPEM []byte) error {
	ctx, cancel := context.WithTimeout(ctx, w.cfg.Timeout)
	defer cancel()
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		s, err := w.secrets.Get(ctx, w.cfg.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		// []byte values marshal as base64, the encoding of Secret data.
		patch, err := json.Marshal(map[string]any{
			"metadata": map[string]any{"resourceVersion": s.ResourceVersion},
			"data":     map[string][]byte{w.cfg.CertKey: certPEM, w.cfg.KeyKey: keyPEM},
		})
		if err != nil {
			return err
		}
		_, err = w.secrets.Patch(ctx, w.cfg.Name, types.MergePatchType, patch, metav1.PatchOptions{FieldManager: "kestrel-operator"})
		return err
	})
	return w.explain(err)
}

// explain turns the apiserver's answer into a reason the cloud's operator can act on.
func (w *secretWriter) explain(err error) error {
	switch {
	case err == nil:
		return nil
	case apierrors.IsForbidden(err):
		return fmt.Errorf("the collector may not write %s (its ServiceAccount needs get and patch on that Secret): %w", w, err)
	case apierrors.IsNotFound(err):
		return fmt.Errorf("%s does not exist (certificate_renewal::secret): %w", w, err)
	case apierrors.IsConflict(err):
		return fmt.Errorf("%s kept changing while it was written; try again: %w", w, err)
	case errors.Is(err, context.DeadlineExceeded) || apierrors.IsTimeout(err) || apierrors.IsServerTimeout(err):
		return fmt.Errorf("writing %s took longer than certificate_renewal::secret::timeout (%v): %w", w, w.cfg.Timeout, err)
	default:
		return fmt.Errorf("writing %s: %w", w, err)
	}
}
