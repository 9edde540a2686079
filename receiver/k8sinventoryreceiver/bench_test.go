package k8sinventoryreceiver

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/pdata/plog"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"github.com/kestrelai/otelcol-kestrel/internal/k8scache"
	"github.com/kestrelai/otelcol-kestrel/internal/kubeenv"
	"github.com/kestrelai/otelcol-kestrel/internal/schema"
	"github.com/kestrelai/otelcol-kestrel/internal/testutil"
)

// BenchmarkInventory10kPods creates $KESTREL_BENCH_PODS (default 10000) pods in the real
// apiserver and reports the initial sync time of the receiver, the heap each cached pod
// costs, and the CPU the receiver spends per 1,000 pod updates. It measures once; run it
// with -benchtime=1x:
//
//	go test -run '^$' -bench Inventory10kPods -benchtime=1x ./receiver/k8sinventoryreceiver/
func BenchmarkInventory10kPods(b *testing.B) {
	n := 10000
	if v := os.Getenv("KESTREL_BENCH_PODS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil {
			b.Fatal(err)
		}
	}
	env := kubeenv.Shared(b)
	ns := env.Namespace(b)
	admin := env.RestConfig()
	admin.QPS, admin.Burst = 2000, 4000
	cs, err := kubernetes.NewForConfig(admin)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	start := time.Now()
	parallel(b, n, func(i int) error {
		_, err := cs.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("p-%05d", i), Labels: map[string]string{"app": "bench", "shard": strconv.Itoa(i % 16)}},
			Spec:       podTemplate("bench").Spec,
		}, metav1.CreateOptions{})
		return err
	})
	b.Logf("created %d pods in %v", n, time.Since(start).Round(time.Millisecond))

	// Heap per cached pod: one pod informer of its own, measured after GC.
	cacheCfg := env.RestConfig()
	cacheCfg.UserAgent = "bench-heap"
	c, err := k8scache.For(cacheCfg)
	if err != nil {
		b.Fatal(err)
	}
	before := heap()
	inf, release := c.Informer(k8scache.Pods, ns)
	cache.WaitForCacheSync(ctx.Done(), inf.HasSynced)
	perPod := float64(heap()-before) / float64(n)
	release()

	// Initial sync: receiver start to snapshot_complete.
	sink := &countingSink{}
	rc := env.RestConfig()
	rc.UserAgent = "bench-receiver"
	cfg := createDefaultConfig().(*Config)
	cfg.Namespaces.Include = []string{ns}
	r := testReceiver(b, cfg, rc, sink)
	start = time.Now()
	if err := r.Start(ctx, &testutil.StatusHost{}); err != nil {
		b.Fatal(err)
	}
	sink.waitCompletes(1)
	synced := time.Since(start)

	// CPU per 1,000 updates: label patches with the receiver running, minus the same
	// patches' cost to the client alone.
	updates := min(1000, n)
	patch := func(label string) {
		parallel(b, updates, func(i int) error {
			body := fmt.Sprintf(`{"metadata":{"labels":{"rev":%q}}}`, label)
			_, err := cs.CoreV1().Pods(ns).Patch(ctx, fmt.Sprintf("p-%05d", i), types.MergePatchType, []byte(body), metav1.PatchOptions{})
			return err
		})
	}
	cpu0 := cpuTime()
	patch("a")
	sink.waitUpdates(updates)
	withReceiver := cpuTime() - cpu0
	if err := r.Shutdown(context.Background()); err != nil {
		b.Fatal(err)
	}
	cpu0 = cpuTime()
	patch("b")
	clientOnly := cpuTime() - cpu0
	scale := 1000 / float64(updates)

	b.ReportMetric(synced.Seconds(), "sync-s")
	b.ReportMetric(perPod, "heap-B/cached-pod")
	b.ReportMetric(float64((withReceiver-clientOnly).Milliseconds())*scale, "receiver-cpu-ms/1k-updates")
	b.Logf("pods %d: initial sync %v; heap %.0f B per cached pod; CPU for %d updates %v with the receiver, %v for the client alone",
		n, synced.Round(time.Millisecond), perPod, updates, withReceiver.Round(time.Millisecond), clientOnly.Round(time.Millisecond))
}

func parallel(b *testing.B, n int, fn func(i int) error) {
	var next atomic.Int64
	var wg sync.WaitGroup
	var failed atomic.Value
	for range 32 {
		wg.Go(func() {
			for i := int(next.Add(1)) - 1; i < n; i = int(next.Add(1)) - 1 {
				if err := fn(i); err != nil {
					failed.Store(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err, _ := failed.Load().(error); err != nil {
		b.Fatal(err)
	}
}

func heap() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// countingSink counts records without keeping them.
type countingSink struct {
	mu        sync.Mutex
	cond      *sync.Cond
	completes int
	updates   int
}

var _ consumer.Logs = (*countingSink)(nil)

func (*countingSink) Capabilities() consumer.Capabilities { return consumer.Capabilities{} }

func (s *countingSink) ConsumeLogs(_ context.Context, ld plog.Logs) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cond == nil {
		s.cond = sync.NewCond(&s.mu)
	}
	for lr := range testutil.LogRecords(ld) {
		switch lr.EventName() {
		case schema.EventInventorySnapshotComplete:
			s.completes++
		case schema.EventInventoryPod:
			if a, _ := lr.Attributes().Get(schema.AttrAction); a.Str() == schema.ActionUpdate {
				s.updates++
			}
		}
	}
	s.cond.Broadcast()
	return nil
}

func (s *countingSink) wait(done func() bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cond == nil {
		s.cond = sync.NewCond(&s.mu)
	}
	for !done() {
		s.cond.Wait()
	}
}

func (s *countingSink) waitCompletes(n int) { s.wait(func() bool { return s.completes >= n }) }
func (s *countingSink) waitUpdates(n int)   { s.wait(func() bool { return s.updates >= n }) }
