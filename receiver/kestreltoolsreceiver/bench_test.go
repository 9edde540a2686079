package kestreltoolsreceiver

import (
	"context"
	"fmt"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/kestrelai/otelcol-kestrel/internal/kubeenv"
)

// BenchmarkTools measures the cloud's tools end to end (devcloud → kestrel_command →
// kestrel_tools → the real kube-apiserver and back) over 1,000 pods, and the heap while
// answering an 8 MiB response. Baselines in the same run: the same reads by client-go
// directly, as admin, without the tools. Run with -benchtime=200x for stable p99s.
func BenchmarkTools(b *testing.B) {
	f := start(b, nil)
	admin, err := kubernetes.NewForConfig(kubeenv.Shared(b).RestConfig())
	require.NoError(b, err)
	// The pods are created for the first benchmark that lists them, so that -bench can
	// pick the 8 MiB one alone without waiting for them.
	pods := sync.OnceFunc(func() { createPods(b, admin, f.ns, 1000) })

	b.Run("kubernetes_api_list_1000_pods", func(b *testing.B) {
		pods()
		latencies(b, func() {
			r := f.api(b, "api/v1/namespaces/"+f.ns+"/pods").GetResults()[0]
			if !r.GetSuccess() || !strings.Contains(r.GetResponseData(), "bench-999") {
				b.Fatalf("unexpected answer: %d %s", r.GetStatusCode(), r.GetErrorMessage())
			}
		})
	})
	b.Run("baseline_client_go_list_1000_pods", func(b *testing.B) {
		pods()
		rc := admin.CoreV1().RESTClient()
		latencies(b, func() {
			body, err := rc.Get().AbsPath("/api/v1/namespaces/" + f.ns + "/pods").DoRaw(context.Background())
			if err != nil || !strings.Contains(string(body), "bench-999") {
				b.Fatal(err)
			}
		})
	})
	b.Run("kubectl_get_pods_A_1000_pods", func(b *testing.B) {
		pods()
		latencies(b, func() {
			r := f.shell(b, "kubectl get pods -A").GetResults()[0]
			if r.GetExitCode() != 0 || !strings.Contains(r.GetStdout(), "bench-999") {
				b.Fatalf("unexpected answer: %d %s", r.GetExitCode(), r.GetStderr())
			}
		})
	})
	b.Run("baseline_client_go_table_1000_pods", func(b *testing.B) {
		pods()
		rc := admin.CoreV1().RESTClient()
		latencies(b, func() {
			body, err := rc.Get().AbsPath("/api/v1/pods").
				SetHeader("Accept", "application/json;as=Table;v=v1;g=meta.k8s.io").DoRaw(context.Background())
			if err != nil || !strings.Contains(string(body), "bench-999") {
				b.Fatal(err)
			}
		})
	})

	// Eight ConfigMaps of 1 MiB: listing them is an answer capped at max_result_bytes (8 MiB).
	bigNS := kubeenv.Shared(b).Namespace(b)
	value := strings.Repeat("x", 1000<<10)
	for i := range 9 {
		_, err := admin.CoreV1().ConfigMaps(bigNS).Create(context.Background(), &corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("big-%d", i)}, Data: map[string]string{"v": value},
		}, metav1.CreateOptions{})
		require.NoError(b, err)
	}
	b.Run("kubernetes_api_8MiB_response", func(b *testing.B) {
		peakHeap(b, func() int {
			r := f.api(b, "api/v1/namespaces/"+bigNS+"/configmaps").GetResults()[0]
			if !strings.Contains(r.GetResponseData(), "response truncated at") {
				b.Fatalf("want a truncated 8 MiB answer, got %d bytes: %s", len(r.GetResponseData()), r.GetErrorMessage())
			}
			return len(r.GetResponseData())
		})
	})
	b.Run("baseline_client_go_read_8MiB", func(b *testing.B) {
		rc := admin.CoreV1().RESTClient()
		peakHeap(b, func() int {
			body, err := rc.Get().AbsPath("/api/v1/namespaces/" + bigNS + "/configmaps").DoRaw(context.Background())
			require.NoError(b, err)
			return len(body)
		})
	})
}

// latencies runs fn b.N times and reports the p50 and p99 latency.
func latencies(b *testing.B, fn func()) {
	b.Helper()
	var lat []time.Duration
	for b.Loop() {
		t0 := time.Now()
		fn()
		lat = append(lat, time.Since(t0))
	}
	slices.Sort(lat)
	pct := func(p float64) float64 {
		return float64(lat[min(len(lat)-1, int(float64(len(lat))*p))].Microseconds()) / 1000
	}
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
}

// peakHeap runs fn b.N times and reports the growth of the heap in use over its level
// before fn, sampled every millisecond (the median and the largest of the runs), and the
// size fn reports. The collector runs
// with GOGC=10 meanwhile, so that the heap in use follows what is live instead of the
// garbage a default GOGC lets pile up (B/op reports the allocations).
func peakHeap(b *testing.B, fn func() int) {
	b.Helper()
	defer debug.SetGCPercent(debug.SetGCPercent(10))
	var peaks []uint64
	size := 0
	for b.Loop() {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		base := ms.HeapInuse
		var top atomic.Uint64
		done := make(chan struct{})
		var wg sync.WaitGroup
		wg.Go(func() {
			var s runtime.MemStats
			for {
				runtime.ReadMemStats(&s)
				if s.HeapInuse > top.Load() {
					top.Store(s.HeapInuse)
				}
				select {
				case <-done:
					return
				case <-time.After(time.Millisecond):
				}
			}
		})
		size = fn()
		close(done)
		wg.Wait()
		peaks = append(peaks, top.Load()-min(top.Load(), base))
	}
	slices.Sort(peaks)
	b.ReportMetric(float64(peaks[len(peaks)/2])/(1<<20), "peak-heap-p50-MiB")
	b.ReportMetric(float64(peaks[len(peaks)-1])/(1<<20), "peak-heap-max-MiB")
	b.ReportMetric(float64(size)/(1<<20), "response-MiB")
}

// createPods creates n bare pods (no scheduler runs, so they stay Pending) in ns.
func createPods(b *testing.B, cs kubernetes.Interface, ns string, n int) {
	b.Helper()
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	for i := range n {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			_, err := cs.CoreV1().Pods(ns).Create(context.Background(), &corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("bench-%d", i), Labels: map[string]string{"app": "bench", "shard": fmt.Sprint(i % 10)}},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{
					Name: "app", Image: "registry.k8s.io/pause:3.10",
					Env: []corev1.EnvVar{{Name: "MODE", Value: "bench"}, {Name: "SHARD", Value: fmt.Sprint(i % 10)}},
				}}},
			}, metav1.CreateOptions{})
			if err != nil {
				b.Error(err)
			}
		})
	}
	wg.Wait()
}
