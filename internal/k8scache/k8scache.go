// Package k8scache shares Kubernetes informers across the components of one process. There
// is one Cache per apiserver identity (host, credentials, user agent) and, in it, at most
// one informer per resource and namespace, however many components watch it, so every
// consumer reads the same objects from the same memory and costs the apiserver one watch.
// Its consumers are the inventory receiver, the risk receiver and internal/podowner (the
// workload resolver of the ALS receiver and the metrics store).
//
// Informers list and watch (client-go streams the initial state with WatchList where the
// apiserver supports it and otherwise lists in pages) and never resync. Before an object
// is cached it is slimmed: managedFields and the last-applied-configuration annotation are
// removed from every object, and the kinds that dominate memory keep only the fields
// consumers read (see Resource): pods are cached as *slim.Pod, a type of their own. Objects handed out by an informer are shared and must
// not be modified.
package k8scache // import "github.com/kestrelai/otelcol-kestrel/internal/k8scache"

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
)

var registry = struct {
	mu     sync.Mutex
	caches map[string]*Cache
}{caches: map[string]*Cache{}}

// Cache holds the shared informers of one apiserver identity.
type Cache struct {
	clients *clients

	mu        sync.Mutex
	informers map[informerKey]*Informer
}

type clients struct {
	typed    kubernetes.Interface
	dynamic  dynamic.Interface
	metadata metadata.Interface
}

type informerKey struct {
	resource  string
	namespace string
}

// For returns the process-wide Cache for cfg's apiserver and identity, creating it on
// first use. Configs that differ only in transport hooks (WrapTransport, Dial) count as the
// same identity; give them different UserAgents to keep them apart. A Cache, a few
// clients, lives as long as the process: callers may keep one across uses (the inventory
// receiver does, across leadership terms) and still share its informers with every other
// component.
func For(cfg *rest.Config) (*Cache, error) {
	key := identity(cfg)
	registry.mu.Lock()
	defer registry.mu.Unlock()
	if c, ok := registry.caches[key]; ok {
		return c, nil
	}
	cfg = rest.CopyConfig(cfg)
	// The apiserver gzips watch streams and lists for clients that accept it; decompressing
	// every change cost a tenth of the inventory's CPU per pod update, far more than the
	// bytes are worth between a cluster's own pods and its apiserver.
	cfg.DisableCompression = true
	typed, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("k8scache: %w", err)
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("k8scache: %w", err)
	}
	meta, err := metadata.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("k8scache: %w", err)
	}
	c := &Cache{
		clients:   &clients{typed: typed, dynamic: dyn, metadata: meta},
		informers: map[informerKey]*Informer{},
	}
	registry.caches[key] = c
	return c, nil
}

// identity is what distinguishes one client identity from another. It is hashed so that
// the registry does not hold credentials in its keys.
func identity(cfg *rest.Config) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s|%s|%s|%s|%s|%s|%s|", cfg.Host, cfg.APIPath, cfg.UserAgent, cfg.BearerToken, cfg.BearerTokenFile, cfg.Username, cfg.Password)
	fmt.Fprintf(&b, "%s|%s|%v|%v|", cfg.Impersonate.UserName, cfg.Impersonate.UID, cfg.Impersonate.Groups, cfg.Impersonate.Extra)
	t := cfg.TLSClientConfig
	fmt.Fprintf(&b, "%v|%s|%s|%s|%s|%s|%s|%s|", t.Insecure, t.ServerName, t.CertFile, t.KeyFile, t.CAFile, t.CertData, t.KeyData, t.CAData)
	if cfg.AuthProvider != nil {
		fmt.Fprintf(&b, "%s|%v|", cfg.AuthProvider.Name, cfg.AuthProvider.Config)
	}
	if cfg.ExecProvider != nil {
		fmt.Fprintf(&b, "%s|%v|%v|", cfg.ExecProvider.Command, cfg.ExecProvider.Args, cfg.ExecProvider.Env)
	}
	sum := sha256.Sum256([]byte(b.String()))
	return hex.EncodeToString(sum[:])
}

// Discovery returns a discovery client for the cache's apiserver.
func (c *Cache) Discovery() discovery.DiscoveryInterface { return c.clients.typed.Discovery() }

// Clientset returns the typed client the cache's informers use.
func (c *Cache) Clientset() kubernetes.Interface { return c.clients.typed }

// Dynamic returns the dynamic client of the cache's identity, e.g. to apply custom
// resources.
func (c *Cache) Dynamic() dynamic.Interface { return c.clients.dynamic }

// Informer returns the shared informer for r in namespace ns ("" for all namespaces;
// ignored for cluster-scoped resources), creating and starting it on first use. Call
// release once the informer is no longer needed, after removing the event handlers added
// to it; the informer stops when its last user releases it.
func (c *Cache) Informer(r *Resource, ns string) (inf *Informer, release func()) {
	if !r.Namespaced {
		ns = ""
	}
	key := informerKey{resource: r.Name, namespace: ns}
	c.mu.Lock()
	defer c.mu.Unlock()
	inf, ok := c.informers[key]
	if !ok {
		inf = newInformer(c.clients, r, ns)
		c.informers[key] = inf
	}
	inf.refs++
	var once sync.Once
	return inf, func() { once.Do(func() { c.release(key, inf) }) }
}

func (c *Cache) release(key informerKey, inf *Informer) {
	c.mu.Lock()
	inf.refs--
	last := inf.refs == 0
	if last {
		delete(c.informers, key)
	}
	c.mu.Unlock()
	if last {
		inf.stop()
	}
}

// Informer is one shared informer plus the health of its list/watch.
type Informer struct {
	cache.SharedIndexInformer
	Resource  *Resource
	Namespace string

	refs   int // guarded by Cache.mu
	cancel context.CancelFunc
	done   chan struct{}

	mu     sync.Mutex
	err    error
	subs   map[int]func(error)
	nextID int
}

func newInformer(cl *clients, r *Resource, ns string) *Informer {
	inf := &Informer{Resource: r, Namespace: ns, done: make(chan struct{}), subs: map[int]func(error){}}
	lw := r.listWatch(cl, ns)
	// Wrapping list and watch shows every attempt: the reflector reports failures to the
	// watch error handler only when it gives up on a watch, and retries a refused
	// connection silently, so an apiserver that is down would go unnoticed.
	wrapped := &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, opts metav1.ListOptions) (runtime.Object, error) {
			obj, err := lw.ListWithContext(ctx, opts)
			inf.attempted(err)
			return obj, err
		},
		WatchFuncWithContext: func(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
			w, err := lw.WatchWithContext(ctx, opts)
			inf.attempted(err)
			return w, err
		},
	}
	inf.SharedIndexInformer = cache.NewSharedIndexInformerWithOptions(wrapped, r.object(), cache.SharedIndexInformerOptions{
		Indexers: cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc},
	})
	// Both setters fail only after the informer started, which it has not.
	_ = inf.SetTransform(r.transformFunc())
	_ = inf.SetWatchErrorHandlerWithContext(func(_ context.Context, _ *cache.Reflector, err error) {
		// A watch the server closed is routine: the reflector rewatches on its own.
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return
		}
		inf.attempted(err)
	})
	var ctx context.Context
	ctx, inf.cancel = context.WithCancel(context.Background())
	go func() {
		defer close(inf.done)
		inf.RunWithContext(ctx)
	}()
	return inf
}

func (inf *Informer) stop() {
	inf.cancel()
	<-inf.done
}

// Err returns the error of the last failed list or watch, or nil once the apiserver
// answered again.
func (inf *Informer) Err() error {
	inf.mu.Lock()
	defer inf.mu.Unlock()
	return inf.err
}

// OnHealth calls fn with each change of Err (a new error, or nil after recovery) until
// the returned function is called. fn runs on the informer's goroutines, under its lock so
// that changes arrive in order: it must not block or call the informer's methods.
func (inf *Informer) OnHealth(fn func(error)) (cancel func()) {
	inf.mu.Lock()
	defer inf.mu.Unlock()
	id := inf.nextID
	inf.nextID++
	inf.subs[id] = fn
	return func() {
		inf.mu.Lock()
		defer inf.mu.Unlock()
		delete(inf.subs, id)
	}
}

// attempted records the outcome of a list or watch attempt. An expired resourceVersion
// is routine: the reflector relists.
func (inf *Informer) attempted(err error) {
	if err != nil && (apierrors.IsResourceExpired(err) || apierrors.IsGone(err)) {
		return
	}
	inf.setErr(err)
}

func (inf *Informer) setErr(err error) {
	inf.mu.Lock()
	defer inf.mu.Unlock()
	if inf.err == nil && err == nil {
		return
	}
	if inf.err != nil && err != nil && inf.err.Error() == err.Error() {
		return
	}
	inf.err = err
	for _, fn := range inf.subs {
		fn(err)
	}
}

// Running returns how many informers run in the process; tests use it to check that
// every user released what it acquired.
func Running() int {
	registry.mu.Lock()
	defer registry.mu.Unlock()
	n := 0
	for _, c := range registry.caches {
		c.mu.Lock()
		n += len(c.informers)
		c.mu.Unlock()
	}
	return n
}
