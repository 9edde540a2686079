package k8sinventoryreceiver

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componentstatus"
	"go.opentelemetry.io/collector/consumer/consumertest"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kestrelai/otelcol-kestrel/internal/kubeenv"
	"github.com/kestrelai/otelcol-kestrel/internal/schema"
	"github.com/kestrelai/otelcol-kestrel/internal/testutil"
)

// throttle answers some of the receiver's requests to the real apiserver with 429 and
// Retry-After: 1, as API Priority and Fairness does when the apiserver sheds load (a fault
// injected into the client's transport; everything else reaches the apiserver).
type throttle struct {
	every    atomic.Int64 // 0: none; n: every n-th request
	n        atomic.Int64
	answered atomic.Int64
	next     http.RoundTripper
}

func (th *throttle) RoundTrip(req *http.Request) (*http.Response, error) {
	if every := th.every.Load(); every > 0 && th.n.Add(1)%every == 0 {
		th.answered.Add(1)
		return &http.Response{
			StatusCode: http.StatusTooManyRequests, Status: "429 Too Many Requests", Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
			Header:  http.Header{"Retry-After": {"1"}, "Content-Type": {"text/plain"}},
			Body:    io.NopCloser(strings.NewReader("Too many requests, please try again later.\n")),
			Request: req,
		}, nil
	}
	return th.next.RoundTrip(req)
}

// TestAPIServerRestartsAnd429s: the apiserver answers 429 (every request at first, then
// every third) and restarts three times while pods come and go. The receiver does not
// crash, each outage shows in its status, and its inventory converges to the cluster's:
// no pod lost, none left behind, no pod created twice without a delete between.
func TestAPIServerRestartsAnd429s(t *testing.T) { apiServerFaults(t, 3) }

// TestSoakAPIServerRestarts is the longer run (make soak-sources): SOAK_APISERVER_RESTARTS
// restarts (20 in make soak-sources).
func TestSoakAPIServerRestarts(t *testing.T) {
	n := os.Getenv("SOAK_APISERVER_RESTARTS")
	if n == "" {
		t.Skip("SOAK_APISERVER_RESTARTS is not set: run make soak-sources")
	}
	restarts, err := strconv.Atoi(n)
	require.NoError(t, err)
	apiServerFaults(t, restarts)
}

func apiServerFaults(t *testing.T, restarts int) {
	env := kubeenv.New(t, kubeenv.Options{NoControllerManager: true})
	ctx := t.Context()
	cs := adminClient(t, env)
	const ns = "faults"
	_, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
	require.NoError(t, err)
	created, deleted := 0, 0
	createPod := func(name string) {
		t.Helper()
		_, err := cs.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: podTemplate(name).Spec}, metav1.CreateOptions{})
		require.NoError(t, err)
		created++
	}
	for i := range 20 {
		createPod(fmt.Sprintf("initial-%d", i))
	}

	rc, _ := isolatedConfig(t, env)
	th := &throttle{}
	th.every.Store(1) // every request refused at first
	rc.Wrap(func(next http.RoundTripper) http.RoundTripper { th.next = next; return th })
	cfg := createDefaultConfig().(*Config)
	cfg.Namespaces.Include = []string{ns}
	sink := &consumertest.LogsSink{}
	host := &testutil.StatusHost{}
	require.NoError(t, testReceiver(t, cfg, rc, sink).Start(ctx, host))
	time.Sleep(2 * time.Second)
	th.every.Store(3)
	waitRecord(t, sink, "snapshot_complete under 429s", is(schema.EventInventorySnapshotComplete, ""))

	start := time.Now()
	for r := range restarts {
		env.StopAPIServer()
		host.WaitStatus(t, componentstatus.StatusRecoverableError, "connection refused")
		require.NoError(t, env.StartAPIServer(ctx))
		for i := range 5 {
			createPod(fmt.Sprintf("round-%d-%d", r, i))
		}
		victim := fmt.Sprintf("initial-%d", r%20)
		if r >= 20 {
			victim = fmt.Sprintf("round-%d-0", r-20)
		}
		require.NoError(t, cs.CoreV1().Pods(ns).Delete(ctx, victim, metav1.DeleteOptions{GracePeriodSeconds: new(int64)}))
		deleted++
	}
	th.every.Store(0)

	// The inventory as the records tell it, against the cluster.
	state := func() (pods []string, duplicates int) {
		live := map[string]bool{}
		for _, r := range records(sink) {
			if r.event != schema.EventInventoryPod {
				continue
			}
			name := r.str(schema.AttrK8sPodName)
			switch r.action {
			case schema.ActionDelete:
				delete(live, name)
			case schema.ActionCreate, "":
				if live[name] {
					duplicates++
				}
				live[name] = true
			default:
				live[name] = true
			}
		}
		for n := range live {
			pods = append(pods, n)
		}
		slices.Sort(pods)
		return pods, duplicates
	}
	list, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	require.NoError(t, err)
	var want []string
	for _, p := range list.Items {
		if p.DeletionTimestamp == nil {
			want = append(want, p.Name)
		}
	}
	slices.Sort(want)
	var got []string
	var duplicates int
	require.Eventually(t, func() bool {
		got, duplicates = state()
		return slices.Equal(want, got)
	}, waitFor, tick, "the inventory converges to the cluster's pods")
	host.WaitStatus(t, componentstatus.StatusOK)
	lost, extra := 0, 0
	for _, p := range want {
		if !slices.Contains(got, p) {
			lost++
		}
	}
	for _, p := range got {
		if !slices.Contains(want, p) {
			extra++
		}
	}
	t.Logf("apiserver faults: %d restarts in %v, %d requests answered 429; pods created %d, deleted %d; inventory %d pods = cluster %d, lost %d, left behind %d, duplicated creates %d",
		restarts, time.Since(start).Round(100*time.Millisecond), th.answered.Load(), created, deleted, len(got), len(want), lost, extra, duplicates)
	assert.Zero(t, duplicates, "a pod created twice without a delete between")
	assert.Positive(t, th.answered.Load())
}
