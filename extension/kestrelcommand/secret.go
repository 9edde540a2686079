package kestrelcommand // import "github.com/kestrelai/otelcol-kestrel/extension/kestrelcommand"

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/kubernetes"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/util/retry"

	"github.com/kestrelai/otelcol-kestrel/internal/k8sapi"
)

// fieldManager is who the Secrets' managedFields name as the writer of renewed credentials.
const fieldManager = "kestrel-operator"

// SecretRef names one Secret the extension keeps a renewed credential in, through the
// Kubernetes API: the client certificate (certificate_renewal::secret) or the token
// (token::persist_secret).
type SecretRef struct {
	// Namespace and Name of the Secret; both or neither.
	Namespace string `mapstructure:"namespace"`
	Name      string `mapstructure:"name"`
	// Timeout bounds one read, or one read and patch, of the Secret.
	Timeout time.Duration `mapstructure:"timeout"`
}

func (r *SecretRef) enabled() bool { return r.Name != "" }

// validate checks the reference; prefix is the setting's path, e.g. "token::persist_secret::".
func (r *SecretRef) validate(prefix string) []error {
	var errs []error
	if (r.Namespace == "") != (r.Name == "") {
		errs = append(errs, fmt.Errorf("%snamespace and %sname must be set together, got namespace %q and name %q", prefix, prefix, r.Namespace, r.Name))
	}
	if r.Name != "" {
		for _, msg := range validation.IsDNS1123Subdomain(r.Name) {
			errs = append(errs, fmt.Errorf("%sname %q: %s", prefix, r.Name, msg))
		}
	}
	if r.Namespace != "" {
		for _, msg := range validation.IsDNS1123Label(r.Namespace) {
			errs = append(errs, fmt.Errorf("%snamespace %q: %s", prefix, r.Namespace, msg))
		}
	}
	if r.Timeout <= 0 || r.Timeout > 5*time.Minute {
		errs = append(errs, fmt.Errorf("%stimeout must be between 0 and 5m, got %v", prefix, r.Timeout))
	}
	return errs
}

// validateSecretKey checks a key of a Secret's data; setting is its path, e.g. "token::persist_secret::key".
func validateSecretKey(setting, key string) []error {
	var errs []error
	for _, msg := range validation.IsConfigMapKey(key) {
		errs = append(errs, fmt.Errorf("%s %q: %s", setting, key, msg))
	}
	return errs
}

// secretStore reads and writes the one Secret of a SecretRef. A write is one merge patch of
// data keys guarded by the resourceVersion just read, so the keys change together and a
// concurrent writer is never overwritten unseen (a conflict is re-read and retried). It
// needs get and patch on that one Secret, nothing else.
type secretStore struct {
	ref SecretRef
	// setting is the configuration key that names the Secret, for error messages.
	setting string
	secrets corev1client.SecretInterface
}

func newSecretStore(ref SecretRef, setting string, kube k8sapi.Config) (*secretStore, error) {
	rc, err := kube.RestConfig()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", setting, err)
	}
	// A hung apiserver must not hold a caller beyond the configured timeout.
	rc.Timeout = ref.Timeout
	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", setting, err)
	}
	return &secretStore{ref: ref, setting: setting, secrets: cs.CoreV1().Secrets(ref.Namespace)}, nil
}

func (s *secretStore) String() string { return "Secret " + s.ref.Namespace + "/" + s.ref.Name }

// read returns the Secret within the configured timeout.
func (s *secretStore) read(ctx context.Context) (*corev1.Secret, error) {
	ctx, cancel := context.WithTimeout(ctx, s.ref.Timeout)
	defer cancel()
	sec, err := s.secrets.Get(ctx, s.ref.Name, metav1.GetOptions{})
	return sec, s.explain("read", err)
}

// write patches the keys that update returns into the Secret, within the configured
// timeout. update sees the Secret as just read (again after a conflict); returning nil
// writes nothing.
func (s *secretStore) write(ctx context.Context, update func(*corev1.Secret) map[string][]byte) error {
	ctx, cancel := context.WithTimeout(ctx, s.ref.Timeout)
	defer cancel()
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cur, err := s.secrets.Get(ctx, s.ref.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		data := update(cur)
		if data == nil {
			return nil
		}
		// []byte values marshal as base64, the encoding of Secret data.
		patch, err := json.Marshal(map[string]any{
			"metadata": map[string]any{"resourceVersion": cur.ResourceVersion},
			"data":     data,
		})
		if err != nil {
			return err
		}
		_, err = s.secrets.Patch(ctx, s.ref.Name, types.MergePatchType, patch, metav1.PatchOptions{FieldManager: fieldManager})
		return err
	})
	return s.explain("write", err)
}

var verbing = map[string]string{"read": "reading", "write": "writing"}

// explain turns the apiserver's answer to a read or write (verb) into a reason an operator
// can act on.
func (s *secretStore) explain(verb string, err error) error {
	switch {
	case err == nil:
		return nil
	case apierrors.IsForbidden(err):
		return fmt.Errorf("the collector may not %s %s (its ServiceAccount needs get and patch on that Secret): %w", verb, s, err)
	case apierrors.IsNotFound(err):
		return fmt.Errorf("%s does not exist (%s): %w", s, s.setting, err)
	case apierrors.IsConflict(err):
		return fmt.Errorf("%s kept changing while it was written; try again: %w", s, err)
	case errors.Is(err, context.DeadlineExceeded) || apierrors.IsTimeout(err) || apierrors.IsServerTimeout(err):
		return fmt.Errorf("%s %s took longer than %s::timeout (%v): %w", verbing[verb], s, s.setting, s.ref.Timeout, err)
	default:
		return fmt.Errorf("%s %s: %w", verbing[verb], s, err)
	}
}
