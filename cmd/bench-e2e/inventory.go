package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"

	cloudv1 "github.com/kestrelai/otelcol-kestrel/api/cloud/v1"
	"github.com/kestrelai/otelcol-kestrel/internal/devcloud"
	"github.com/kestrelai/otelcol-kestrel/internal/kubeenv"
)

// The inventory scenarios run k8s_inventory → kestrel against a real kube-apiserver with
// controller-manager (internal/kubeenv; no kubelet, so pods stay Pending) holding the
// cluster the issue describes: 50 namespaces, 250 Deployments with their ReplicaSets and
// pods, 250 Services. One cluster per size serves every run of that size.

const (
	invNamespaces  = 50
	invDeployments = 250 // 5 per namespace, each with a Service
	// invUpdates pod label changes make one round of the update measurement.
	invUpdates = 1000
	invRounds  = 2
)

// labelRound numbers the rounds of pod label changes in this process.
var labelRound atomic.Int64

// baselineSuffix names the runs of -baseline-bin.
const baselineSuffix = " (baseline build)"

// inventoryResult is what one run of an inventory scenario measured.
type inventoryResult struct {
	startToCommit    time.Duration
	snapshotMessages int
	// snapshotKinds counts the snapshot's messages by type ("Pod 5000, ..."); snapshotRepeats
	// those that name an object (by type and uid) an earlier one in the snapshot named.
	snapshotKinds     string
	snapshotRepeats   int
	rssAfterSnapshot  int64
	anonAfterSnapshot int64 // RssAnon then: the RSS without the executable's mapped pages
	// cpuPerRound: collector CPU for invUpdates pod label changes, from the first patch
	// until the cloud received the last Pod update.
	cpuPerRound []time.Duration
	// statusAfterCommit counts rollout/pod status/node condition messages after the
	// commit; repeats those that repeat their object's previous message (time and action
	// aside).
	statusAfterCommit, repeats int
	reconnectCPU               time.Duration
	reconnectMessages          int
	reconnectLists             int64
	reconnectWatches           int64
	// floors are what the floor processes (floor.go) measured over the same cluster.
	floors []floorResult
}

// cluster is one populated kube-apiserver.
type cluster struct {
	env  *kubeenv.Env
	cs   *kubernetes.Clientset
	pods []types.NamespacedName
}

var clusters = struct {
	sync.Mutex
	bySize map[int]*cluster
}{bySize: map[int]*cluster{}}

// stopClusters stops the apiservers the runs started.
func stopClusters() {
	clusters.Lock()
	defer clusters.Unlock()
	for n, c := range clusters.bySize {
		c.env.Stop()
		delete(clusters.bySize, n)
	}
}

func clusterFor(ctx context.Context, dir string, pods int, log func(string, ...any)) (*cluster, error) {
	clusters.Lock()
	defer clusters.Unlock()
	if c, ok := clusters.bySize[pods]; ok {
		return c, nil
	}
	start := time.Now()
	env, err := kubeenv.Start(ctx, kubeenv.Options{Dir: filepath.Join(dir, fmt.Sprintf("kube-%d", pods)), ControllerManagerQPS: 1000})
	if err != nil {
		return nil, err
	}
	rc := env.RestConfig()
	rc.QPS, rc.Burst = 2000, 4000
	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		env.Stop()
		return nil, err
	}
	c := &cluster{env: env, cs: cs}
	if err := c.populate(ctx, pods); err != nil {
		env.Stop()
		return nil, err
	}
	log("cluster of %d pods ready in %v", pods, time.Since(start).Round(time.Second))
	clusters.bySize[pods] = c
	return c, nil
}

// populate creates the namespaces, Deployments and Services and waits until the
// controller-manager has created every pod and reported every Deployment's status.
func (c *cluster) populate(ctx context.Context, pods int) error {
	perDeployment := int32(pods / invDeployments) //nolint:gosec // small
	for i := range invNamespaces {
		if _, err := c.cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
			Name: fmt.Sprintf("inv-%02d", i), Labels: map[string]string{"team": fmt.Sprintf("t%d", i%7)},
		}}, metav1.CreateOptions{}); err != nil {
			return err
		}
	}
	err := parallel(ctx, invDeployments, 16, func(i int) error {
		ns, name := fmt.Sprintf("inv-%02d", i%invNamespaces), fmt.Sprintf("app-%03d", i)
		labels := map[string]string{"app": name, "tier": "backend"}
		_, err := c.cs.AppsV1().Deployments(ns).Create(ctx, &appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
			Spec: appsv1.DeploymentSpec{
				Replicas: &perDeployment,
				Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}},
				Template: corev1.PodTemplateSpec{
					ObjectMeta: metav1.ObjectMeta{Labels: labels, Annotations: map[string]string{"example.com/config": strings.Repeat("x", 64)}},
					Spec: corev1.PodSpec{Containers: []corev1.Container{{
						Name: "app", Image: "registry.k8s.io/pause:3.10",
						Ports:     []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}},
						Env:       []corev1.EnvVar{{Name: "MODE", Value: "bench"}},
						Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{"cpu": resource.MustParse("100m"), "memory": resource.MustParse("64Mi")}},
					}}},
				},
			},
		}, metav1.CreateOptions{})
		if err != nil {
			return err
		}
		_, err = c.cs.CoreV1().Services(ns).Create(ctx, &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: corev1.ServiceSpec{Selector: map[string]string{"app": name}, Ports: []corev1.ServicePort{{
				Name: "http", Port: 80, TargetPort: intstr.FromString("http"),
			}}},
		}, metav1.CreateOptions{})
		return err
	})
	if err != nil {
		return err
	}
	want := int(perDeployment) * invDeployments
	deadline := time.Now().Add(20 * time.Minute)
	for {
		list, err := c.cs.CoreV1().Pods("").List(ctx, metav1.ListOptions{ResourceVersion: "0"})
		if err != nil {
			return err
		}
		deps, err := c.cs.AppsV1().Deployments("").List(ctx, metav1.ListOptions{ResourceVersion: "0"})
		if err != nil {
			return err
		}
		settled := 0
		for i := range deps.Items {
			d := &deps.Items[i]
			if d.Status.ObservedGeneration == d.Generation && d.Status.Replicas == *d.Spec.Replicas && d.Status.UpdatedReplicas == *d.Spec.Replicas {
				settled++
			}
		}
		if len(list.Items) >= want && settled == len(deps.Items) {
			c.pods = c.pods[:0]
			for i := range list.Items {
				c.pods = append(c.pods, types.NamespacedName{Namespace: list.Items[i].Namespace, Name: list.Items[i].Name})
			}
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the controller-manager created %d of %d pods; %d of %d Deployments settled", len(list.Items), want, settled, len(deps.Items))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(2 * time.Second):
		}
	}
}

// requestCounts sums the apiserver's apiserver_request_total by verb (all clients).
func (c *cluster) requestCounts(ctx context.Context) (lists, watches int64, err error) {
	raw, err := c.cs.CoreV1().RESTClient().Get().AbsPath("/metrics").DoRaw(ctx)
	if err != nil {
		return 0, 0, err
	}
	return countRequests(raw)
}

// countRequests sums apiserver_request_total of a Prometheus text exposition by verb.
func countRequests(raw []byte) (lists, watches int64, err error) {
	sc := bufio.NewScanner(bytes.NewReader(raw))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "apiserver_request_total{") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			continue
		}
		switch {
		case strings.Contains(line, `verb="LIST"`):
			lists += int64(v)
		case strings.Contains(line, `verb="WATCH"`):
			watches += int64(v)
		}
	}
	return lists, watches, sc.Err()
}

// parallel runs fn(0..n-1) on workers goroutines; the first error stops it.
func parallel(ctx context.Context, n, workers int, fn func(i int) error) error {
	var next atomic.Int64
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	for range workers {
		wg.Go(func() {
			for i := int(next.Add(1)) - 1; i < n && ctx.Err() == nil; i = int(next.Add(1)) - 1 {
				if err := fn(i); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
					return
				}
			}
		})
	}
	wg.Wait()
	if first == nil {
		first = ctx.Err()
	}
	return first
}

// patchPods changes a label of invUpdates pods, 16 at a time: round picks which pods.
func (c *cluster) patchPods(ctx context.Context, round int) error {
	// A value no earlier round (of this or another build) used: a patch to the value a pod
	// already has changes nothing and is not an update.
	label := fmt.Sprintf("u%d", labelRound.Add(1))
	return parallel(ctx, invUpdates, 16, func(i int) error {
		p := c.pods[(round*invUpdates+i)%len(c.pods)]
		_, err := c.cs.CoreV1().Pods(p.Namespace).Patch(ctx, p.Name, types.MergePatchType,
			fmt.Appendf(nil, `{"metadata":{"labels":{"rev":%q}}}`, label), metav1.PatchOptions{})
		return err
	})
}

// snapshotContents counts recs by message type, and the messages about an object (a
// message type and a uid) that an earlier one in recs was about.
func snapshotContents(recs []devcloud.Record) (kinds string, repeats int) {
	count := map[string]int{}
	seen := map[string]bool{}
	for _, r := range recs {
		if r.Payload == nil {
			continue
		}
		m := r.Payload.ProtoReflect()
		name := string(m.Descriptor().Name())
		count[name]++
		if f := m.Descriptor().Fields().ByName("uid"); f != nil {
			key := name + "/" + m.Get(f).String()
			if seen[key] {
				repeats++
			}
			seen[key] = true
		}
	}
	var parts []string
	for _, name := range slices.Sorted(maps.Keys(count)) {
		parts = append(parts, fmt.Sprintf("%s %d", name, count[name]))
	}
	return strings.Join(parts, ", "), repeats
}

// commitIndex returns the index of the first InventoryCommit in recs, or -1.
func commitIndex(recs []devcloud.Record) int {
	for i, r := range recs {
		if _, ok := r.Payload.(*cloudv1.InventoryCommit); ok {
			return i
		}
	}
	return -1
}

func waitCommit(ctx context.Context, cloud *devcloud.Server, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return cloud.WaitFor(ctx, func(recs []devcloud.Record) bool { return commitIndex(recs) >= 0 })
}

// countPodUpdates counts Pod messages with action UPDATE from recs[from:].
func countPodUpdates(recs []devcloud.Record) int {
	n := 0
	for _, r := range recs {
		if p, ok := r.Payload.(*cloudv1.Pod); ok && p.GetAction() == cloudv1.Action_ACTION_UPDATE {
			n++
		}
	}
	return n
}

// statusRepeats counts the status messages (rollout, pod status, node condition) in recs
// and those equal to their object's previous one, apart from the time and the action.
func statusRepeats(recs []devcloud.Record) (status, repeats int) {
	last := map[string]proto.Message{}
	for _, r := range recs {
		var key string
		var m proto.Message
		switch p := r.Payload.(type) {
		case *cloudv1.WorkloadRolloutStatus:
			c := proto.CloneOf(p)
			c.StatusTimestamp, c.Action = nil, 0
			key, m = "rollout/"+p.GetUid(), c
		case *cloudv1.PodStatusChange:
			c := proto.CloneOf(p)
			c.StatusTimestamp, c.Action = nil, 0
			key, m = "pod/"+p.GetUid(), c
		case *cloudv1.NodeConditionChange:
			c := proto.CloneOf(p)
			c.ConditionTimestamp, c.Action = nil, 0
			key, m = "node/"+p.GetUid(), c
		default:
			continue
		}
		status++
		if prev, ok := last[key]; ok && proto.Equal(prev, m) {
			repeats++
		}
		last[key] = m
	}
	return status, repeats
}

func runInventory(ctx context.Context, opts options, sc *scenario, run int, log func(string, ...any)) result {
	res := result{scenario: sc.name, run: run, reconnects: -1, inv: &inventoryResult{}}
	inv := res.inv
	cl, err := clusterFor(ctx, opts.dir, sc.inventoryPods, log)
	if err != nil {
		res.err = err
		return res
	}
	name := fmt.Sprintf("%s-%d", slug(sc.name), run)
	if opts.baseline {
		name += "-baseline"
	}
	e, err := newEnv(filepath.Join(opts.dir, name), opts.bin, opts.profile != "", uint64(run)) //nolint:gosec // run counts from 1
	if err != nil {
		res.err = err
		return res
	}
	defer func() { e.cloud.Kill() }()
	cfg := e.newConfig(true)
	cfg.Receivers["k8s_inventory"] = map[string]any{"auth_type": "kubeConfig"}
	cfg.Processors["memory_limiter"] = memoryLimiter
	cfg.Processors["batch"] = batch
	cfg.Exporters["kestrel"] = map[string]any{"connection": "kestrel_command"}
	cfg.Pipelines["logs"] = pipeline{Receivers: []string{"k8s_inventory"}, Processors: []string{"memory_limiter", "batch"}, Exporters: []string{"kestrel"}}
	cfg.Env = append([]string{"KUBECONFIG=" + cl.env.Kubeconfig()}, opts.env...)

	start := time.Now()
	col, err := startCollector(ctx, e, cfg, "otelcol")
	if err != nil {
		res.err = err
		return res
	}
	defer col.Kill()
	if err := waitCommit(ctx, e.cloud, 5*time.Minute); err != nil {
		res.err = fmt.Errorf("no InventoryCommit: %w (log: %s)", err, col.Log)
		return res
	}
	inv.startToCommit = time.Since(start)
	recs := e.cloud.Records()
	inv.snapshotMessages = commitIndex(recs)
	inv.snapshotKinds, inv.snapshotRepeats = snapshotContents(recs[:inv.snapshotMessages])
	u, err := col.proc.read()
	if err != nil {
		res.err = err
		return res
	}
	inv.rssAfterSnapshot, inv.anonAfterSnapshot = u.PeakRSS, u.RSSAnon
	// Let the pipeline drain what followed the snapshot before measuring changes.
	time.Sleep(5 * time.Second)

	var errs []error
	profiled := make(chan error, 1)
	stopProfile := func() {}
	if opts.profile != "" {
		var pctx context.Context
		pctx, stopProfile = context.WithCancel(ctx)
		defer stopProfile()
		go func() { profiled <- profile(pctx, e, col.proc, 40*time.Second, filepath.Join(opts.profile, name)) }()
	} else {
		profiled <- nil
	}
	rounds := invRounds
	if opts.profile != "" {
		rounds = 8 // enough samples of the update path
	}
	for round := range rounds {
		before, err := col.proc.read()
		if err != nil {
			errs = append(errs, err)
			break
		}
		base := countPodUpdates(e.cloud.Records())
		if err = cl.patchPods(ctx, round); err == nil {
			wctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
			err = e.cloud.WaitFor(wctx, func(recs []devcloud.Record) bool { return countPodUpdates(recs) >= base+invUpdates })
			cancel()
		}
		after, rerr := col.proc.read()
		if err = errors.Join(err, rerr); err != nil {
			errs = append(errs, fmt.Errorf("updates: %w", err))
			break
		}
		inv.cpuPerRound = append(inv.cpuPerRound, after.CPU-before.CPU)
	}
	stopProfile()
	errs = append(errs, <-profiled)
	recs = e.cloud.Records()
	inv.statusAfterCommit, inv.repeats = statusRepeats(recs[commitIndex(recs)+1:])

	// The cloud restarts: a new server on the same address; the collector reconnects and
	// replays its mirror.
	if err := reconnect(ctx, e, cl, col, inv); err != nil {
		errs = append(errs, fmt.Errorf("reconnect: %w", err))
	}
	u, err = col.proc.read()
	errs = append(errs, err)
	res.peakRSS = u.PeakRSS
	if err := col.Stop(time.Minute); err != nil {
		errs = append(errs, fmt.Errorf("stop: %w (log: %s)", err, col.Log))
	}
	// The floor runs once the collector has stopped, so that neither takes CPU from the other.
	if !opts.baseline && opts.profile == "" {
		inv.floors, err = measureFloors(ctx, e.dir, cl, invRounds)
		errs = append(errs, err)
	}
	res.err = errors.Join(errs...)
	return res
}

func reconnect(ctx context.Context, e *env, cl *cluster, col *collector, inv *inventoryResult) error {
	lists0, watches0, err := cl.requestCounts(ctx)
	if err != nil {
		return err
	}
	before, err := col.proc.read()
	if err != nil {
		return err
	}
	addr := e.cloud.Addr()
	e.cloud.Kill()
	cloud, err := devcloud.New(devcloud.Config{CertsDir: e.certs, Listen: addr}, zap.NewNop())
	if err != nil {
		return err
	}
	e.cloud = cloud
	if err := cloud.Start(); err != nil {
		return err
	}
	if err := waitCommit(ctx, cloud, 2*time.Minute); err != nil {
		return err
	}
	after, err := col.proc.read()
	if err != nil {
		return err
	}
	lists1, watches1, err := cl.requestCounts(ctx)
	if err != nil {
		return err
	}
	inv.reconnectCPU = after.CPU - before.CPU
	inv.reconnectMessages = commitIndex(cloud.Records()) + 1
	inv.reconnectLists, inv.reconnectWatches = lists1-lists0, watches1-watches0
	return nil
}

func (r *inventoryResult) summary(peakRSS int64) string {
	var rounds []string
	for _, c := range r.cpuPerRound {
		rounds = append(rounds, fmt.Sprintf("%.3f", c.Seconds()))
	}
	return fmt.Sprintf("commit after %.2f s, %d snapshot messages (%s; %d about an object already in it), peak RSS %.1f MiB after the snapshot (RssAnon %.1f MiB), %.1f MiB at the end; CPU-s per 1,000 pod updates %s; "+
		"%d status messages after the commit (%d repeats); reconnect %.2f CPU-s, %d messages, %d LIST, %d WATCH",
		r.startToCommit.Seconds(), r.snapshotMessages, r.snapshotKinds, r.snapshotRepeats, mib(r.rssAfterSnapshot), mib(r.anonAfterSnapshot), mib(peakRSS), strings.Join(rounds, ", "),
		r.statusAfterCommit, r.repeats, r.reconnectCPU.Seconds(), r.reconnectMessages, r.reconnectLists, r.reconnectWatches) + r.floorSummary()
}

func (r *inventoryResult) floorSummary() string {
	var b strings.Builder
	for _, f := range r.floors {
		var rounds []string
		for _, c := range f.cpu {
			rounds = append(rounds, fmt.Sprintf("%.3f", c.Seconds()))
		}
		fmt.Fprintf(&b, "; %s alone %s CPU-s per 1,000 pod updates, RssAnon %.1f MiB (peak RSS %.1f MiB)", f.name, strings.Join(rounds, ", "), mib(f.anon), mib(f.peakRSS))
	}
	return b.String()
}

// writeInventoryReport writes one row per inventory scenario (ranges over its runs) and
// one per run.
func writeInventoryReport(w io.Writer, scs []*scenario, results []result) {
	var rows []string
	for _, sc := range scs {
		if sc.inventoryPods > 0 {
			rows = append(rows, sc.name+baselineSuffix, sc.name)
		}
	}
	if len(rows) == 0 {
		return
	}
	fmt.Fprintln(w, "| Inventory scenario | Start → commit (s) | Snapshot messages | Peak RSS (MiB) | CPU-s per 1,000 pod updates | Status messages after commit (repeats) | Reconnect: CPU-s / messages / LIST / WATCH | Alone, CPU-s per 1,000 / RssAnon (MiB): client-go informer; client-go watch |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|")
	for _, name := range rows {
		var commit, msgs, rss, cpu, rcpu, rmsgs, lists, watches []float64
		fcpu, fanon := make([][]float64, len(floors)), make([][]float64, len(floors))
		status, repeats, failed := 0, 0, 0
		for _, r := range results {
			if r.scenario != name || r.inv == nil {
				continue
			}
			if r.err != nil {
				failed++
			}
			i := r.inv
			commit = append(commit, i.startToCommit.Seconds())
			msgs = append(msgs, float64(i.snapshotMessages))
			rss = append(rss, mib(r.peakRSS))
			for _, c := range i.cpuPerRound {
				cpu = append(cpu, c.Seconds())
			}
			status += i.statusAfterCommit
			repeats += i.repeats
			rcpu = append(rcpu, i.reconnectCPU.Seconds())
			rmsgs = append(rmsgs, float64(i.reconnectMessages))
			lists = append(lists, float64(i.reconnectLists))
			watches = append(watches, float64(i.reconnectWatches))
			for k, f := range i.floors {
				for _, c := range f.cpu {
					fcpu[k] = append(fcpu[k], c.Seconds())
				}
				fanon[k] = append(fanon[k], mib(f.anon))
			}
		}
		if len(commit) == 0 {
			continue
		}
		if failed > 0 {
			name += fmt.Sprintf(" (%d failed)", failed)
		}
		var cells []string
		for k := range floors {
			if len(fcpu[k]) > 0 {
				cells = append(cells, span(fcpu[k], 3)+" / "+span(fanon[k], 1))
			}
		}
		floorCell := "—"
		if len(cells) > 0 {
			floorCell = strings.Join(cells, "; ")
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %d (%d) | %s / %s / %s / %s | %s |\n", name, span(commit, 2), span(msgs, 0), span(rss, 1),
			span(cpu, 3), status, repeats, span(rcpu, 2), span(rmsgs, 0), span(lists, 0), span(watches, 0), floorCell)
	}
	fmt.Fprintln(w)
	for _, r := range results {
		if r.inv == nil {
			continue
		}
		errText := ""
		if r.err != nil {
			errText = "; error: " + strings.ReplaceAll(r.err.Error(), "\n", "; ")
		}
		fmt.Fprintf(w, "- %s, run %d: %s%s\n", r.scenario, r.run, r.inv.summary(r.peakRSS), errText)
	}
	fmt.Fprintln(w)
}
