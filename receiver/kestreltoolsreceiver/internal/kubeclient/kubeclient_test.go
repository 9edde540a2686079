package kubeclient

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"

	"github.com/kestrelai/otelcol-kestrel/internal/kubeenv"
	"github.com/kestrelai/otelcol-kestrel/receiver/kestreltoolsreceiver/internal/scrub"
)

func TestMain(m *testing.M) { kubeenv.Main(m) }

const value = "guard-marker-value"

// Whatever a client asks for (protobuf here), the guard asks for JSON and scrubs it; the
// typed Secret still decodes, with markers for values.
func TestGuardScrubsTypedClients(t *testing.T) {
	env := kubeenv.Shared(t)
	ns := env.Namespace(t)
	admin, err := kubernetes.NewForConfig(env.RestConfig())
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err = admin.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "s"}, Data: map[string][]byte{"k": []byte(value)},
	}, metav1.CreateOptions{})
	require.NoError(t, err)

	c, err := New(env.RestConfig(), "", 16<<20)
	require.NoError(t, err)
	cfg := c.Config(ctx, nil)
	cfg.ContentType = "application/vnd.kubernetes.protobuf"
	cfg.AcceptContentTypes = "application/vnd.kubernetes.protobuf,application/json"
	cs, err := kubernetes.NewForConfig(cfg)
	require.NoError(t, err)
	s, err := cs.CoreV1().Secrets(ns).Get(ctx, "s", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, scrub.Marker(len(value)), string(s.Data["k"]))
	list, err := cs.CoreV1().Secrets(ns).List(ctx, metav1.ListOptions{})
	require.NoError(t, err)
	require.Len(t, list.Items, 1)
	assert.Equal(t, scrub.Marker(len(value)), string(list.Items[0].Data["k"]))

	// Writes are refused before they reach the apiserver.
	_, err = cs.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "x"}}, metav1.CreateOptions{})
	require.ErrorIs(t, err, ErrRefused)
	err = cs.CoreV1().Secrets(ns).Delete(ctx, "s", metav1.DeleteOptions{})
	require.ErrorIs(t, err, ErrRefused)
	_, err = admin.CoreV1().ConfigMaps(ns).Get(ctx, "x", metav1.GetOptions{})
	require.Error(t, err, "nothing was created")

	// Subresources that open streams are refused even as GETs.
	rc, err := rest.RESTClientFor(withDefaults(c.Config(ctx, nil)))
	require.NoError(t, err)
	err = rc.Get().AbsPath("/api/v1/namespaces", ns, "pods", "p", "exec").Param("command", "sh").Do(ctx).Error()
	require.ErrorIs(t, err, ErrRefused)
}

// Every request ends when the tool request's context does.
func TestGuardEndsWithTheRequest(t *testing.T) {
	env := kubeenv.Shared(t)
	c, err := New(env.RestConfig(), "", 16<<20)
	require.NoError(t, err)
	ctx, cancel := context.WithCancelCause(context.Background())
	cs, err := kubernetes.NewForConfig(c.Config(ctx, nil))
	require.NoError(t, err)
	_, err = cs.Discovery().ServerVersion()
	require.NoError(t, err)
	stop := errors.New("request over")
	cancel(stop)
	_, err = cs.Discovery().ServerVersion()
	require.ErrorIs(t, err, stop)
}

func withDefaults(cfg *rest.Config) *rest.Config {
	cfg.APIPath = "/api"
	cfg.GroupVersion = &corev1.SchemeGroupVersion
	cfg.NegotiatedSerializer = scheme.Codecs.WithoutConversion()
	return cfg
}
