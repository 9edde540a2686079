package kubeenv

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
)

// SkipEnv is the variable that, set to 1, makes Shared skip tests instead of starting a
// server. Nothing else skips: a server that cannot be built or started fails the test.
const SkipEnv = "KESTREL_SKIP_KUBE"

// startTimeout covers a cold build of the binaries (about 6 minutes on 2 busy cores) plus
// the start itself.
const startTimeout = 15 * time.Minute

var shared struct {
	mu      sync.Mutex
	inMain  bool
	started bool
	env     *Env
	err     error
}

// Main runs a test package whose tests use Shared and stops the shared environment
// afterwards. Use it as the package's TestMain:
//
//	func TestMain(m *testing.M) { kubeenv.Main(m) }
//
// When tests failed, the environment's directory (logs, kubeconfig) is kept and printed.
func Main(m *testing.M) {
	shared.mu.Lock()
	shared.inMain = true
	shared.mu.Unlock()
	code := m.Run()
	shared.mu.Lock()
	env := shared.env
	shared.mu.Unlock()
	if env != nil {
		env.Stop()
		if code == 0 {
			_ = os.RemoveAll(env.Dir())
		} else {
			_ = os.RemoveAll(filepath.Join(env.Dir(), "etcd")) // ~100 MB of mostly preallocated WAL
			fmt.Fprintf(os.Stderr, "kubeenv: logs of the shared kube-apiserver kept in %s\n", env.Dir())
		}
	}
	os.Exit(code)
}

// Shared returns the test package's environment, starting it (and building the binaries if
// they are not cached) on first use. It skips the test only when KESTREL_SKIP_KUBE=1; any
// failure to build or start fails every test that asks for it. The package's TestMain
// must call Main, which stops it.
func Shared(tb testing.TB) *Env {
	tb.Helper()
	SkipIfDisabled(tb)
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if !shared.inMain {
		tb.Fatal("kubeenv.Shared needs the test package to have: func TestMain(m *testing.M) { kubeenv.Main(m) }")
	}
	if !shared.started {
		shared.started = true
		shared.env, shared.err = startShared()
	}
	if shared.err != nil {
		tb.Fatalf("kubeenv: shared kube-apiserver: %v", shared.err)
	}
	return shared.env
}

// SkipIfDisabled skips t when KESTREL_SKIP_KUBE=1. Shared and New call it.
func SkipIfDisabled(tb testing.TB) {
	tb.Helper()
	if os.Getenv(SkipEnv) == "1" {
		tb.Skip(SkipEnv + "=1: skipping a test that needs a kube-apiserver")
	}
}

// New starts an environment of t's own and stops it when t ends; for tests that would
// disturb a shared one, such as those stopping the apiserver. An empty opts.Dir becomes a
// directory under t.TempDir(). Like Shared, it skips only when KESTREL_SKIP_KUBE=1.
func New(tb testing.TB, opts Options) *Env {
	tb.Helper()
	SkipIfDisabled(tb)
	if opts.Dir == "" {
		opts.Dir = filepath.Join(tb.TempDir(), "kubeenv")
	}
	if opts.BuildLog == nil {
		opts.BuildLog = os.Stderr
	}
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	env, err := Start(ctx, opts)
	if err != nil {
		tb.Fatalf("kubeenv: %v", err)
	}
	tb.Cleanup(env.Stop)
	return env
}

func startShared() (*Env, error) {
	dir, err := os.MkdirTemp("", "kubeenv-test-")
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	// Builds are rare and slow; their progress goes to stderr so a long first run is explained.
	env, err := Start(ctx, Options{Dir: dir, BuildLog: os.Stderr})
	if err != nil {
		return nil, fmt.Errorf("%w (files in %s)", err, dir)
	}
	return env, nil
}

// Namespace creates a namespace with a unique name for t and deletes it when t ends. With
// the controller-manager running it also waits for the namespace's "default"
// ServiceAccount, without which the ServiceAccount admission plugin rejects pods.
func (e *Env) Namespace(tb testing.TB) string {
	tb.Helper()
	cs, err := kubernetes.NewForConfig(e.RestConfig())
	if err != nil {
		tb.Fatalf("kubeenv: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ns, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "test-"},
	}, metav1.CreateOptions{})
	if err != nil {
		tb.Fatalf("kubeenv: creating a namespace: %v", err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := cs.CoreV1().Namespaces().Delete(ctx, ns.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			tb.Errorf("kubeenv: deleting namespace %s: %v", ns.Name, err)
		}
	})
	e.mu.Lock()
	withKCM := e.kcm != nil
	e.mu.Unlock()
	if withKCM {
		err := wait.PollUntilContextCancel(ctx, 20*time.Millisecond, true, func(ctx context.Context) (bool, error) {
			_, err := cs.CoreV1().ServiceAccounts(ns.Name).Get(ctx, "default", metav1.GetOptions{})
			if apierrors.IsNotFound(err) {
				return false, nil
			}
			return err == nil, err
		})
		if err != nil {
			tb.Fatalf("kubeenv: waiting for the default ServiceAccount of %s: %v", ns.Name, err)
		}
	}
	return ns.Name
}
