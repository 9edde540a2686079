package k8sriskreceiver // import "github.com/kestrelai/otelcol-kestrel/receiver/k8sriskreceiver"

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/bits"
	"runtime/debug"
	"strings"
	"time"

	"go.opentelemetry.io/collector/pdata/plog"
	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"

	"github.com/kestrelai/otelcol-kestrel/internal/flowgraph"
	"github.com/kestrelai/otelcol-kestrel/internal/k8scache"
	"github.com/kestrelai/otelcol-kestrel/internal/k8scache/slim"
	"github.com/kestrelai/otelcol-kestrel/internal/schema"
	"github.com/kestrelai/otelcol-kestrel/receiver/k8sriskreceiver/internal/checks"
	"github.com/kestrelai/otelcol-kestrel/receiver/k8sriskreceiver/internal/report"
)

// maxBatch bounds the records of one ConsumeLogs call.
const maxBatch = 1000

// objKey names an object of a resource.
type objKey struct {
	res      *k8scache.Resource
	ns, name string
}

func keyOf(res *k8scache.Resource, obj any) (objKey, bool) {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	m, ok := obj.(metav1.Object)
	if !ok {
		return objKey{}, false
	}
	return objKey{res: res, ns: m.GetNamespace(), name: m.GetName()}, true
}

// objState is what the engine remembers of an evaluated object: its findings that hold
// (anything but pass) and which checks passed.
type objState struct {
	uid      types.UID
	object   schema.RiskObject
	findings map[string]*finding // by check id
	passed   uint64              // bit i: enabled check i passed
	seen     string              // the last full assessment that evaluated it
}

// engine evaluates the checks on a single goroutine: it turns informer events into
// debounced evaluations, paces full assessments, computes attack chains, emits findings and
// hands PolicyReports to the writer.
type engine struct {
	r       *riskReceiver
	cfg     *Config
	logger  *zap.Logger
	cache   *k8scache.Cache
	src     source
	view    *checks.View
	checks  []*checks.Check
	index   map[*checks.Check]int
	now     func() time.Time
	reports *report.Writer

	objects  map[objKey]*objState
	byNS     map[string]map[objKey]*objState
	chains   map[string]*finding // by fingerprint
	cluster  map[string]*finding // cluster-wide skips, by check id
	podSpecs map[types.UID]*checks.PodSpec
	dirty    map[objKey]time.Time
	edges    []flowgraph.Stat

	sweep        []objKey
	sweepID      string
	sweepStarted time.Time
	nextSweep    time.Time
	firstDone    bool

	chainsDue   time.Time // zero: not due
	lastChains  time.Time
	flowVersion uint64

	counts        map[countKey]int
	countsChanged bool
	reportDirty   map[string]bool

	out plog.Logs
	lrs plog.LogRecordSlice
}

type countKey struct{ pillar, severity, result string }

// source is where the engine's objects and events come from: the watcher's informers (or, in
// benchmarks, indexers filled directly).
type source interface {
	stores() map[*k8scache.Resource]checks.Store
	missing() map[*k8scache.Resource]error
	events() []item
}

func newEngine(r *riskReceiver, c *k8scache.Cache, src source) *engine {
	e := &engine{
		r: r, cfg: r.cfg, logger: r.logger, cache: c, src: src, now: time.Now,
		checks:   r.cfg.enabledChecks(),
		index:    map[*checks.Check]int{},
		objects:  map[objKey]*objState{},
		byNS:     map[string]map[objKey]*objState{},
		chains:   map[string]*finding{},
		cluster:  map[string]*finding{},
		podSpecs: map[types.UID]*checks.PodSpec{},
		dirty:    map[objKey]time.Time{},
		counts:   map[countKey]int{},

		reportDirty: map[string]bool{},
	}
	for i, ch := range e.checks {
		e.index[ch] = i
	}
	if len(e.checks) > 64 {
		panic("k8s_risk: objState.passed holds 64 checks") // the catalogue outgrew it
	}
	e.view = &checks.View{
		Stores:      src.stores(),
		Missing:     src.missing(),
		PodSpecs:    func(uid types.UID) (*checks.PodSpec, bool) { ps, ok := e.podSpecs[uid]; return ps, ok },
		Flows:       func() []flowgraph.Stat { return e.edges },
		FlowSources: flowgraph.Sources,
		Now:         func() time.Time { return e.now() },
	}
	if r.cfg.PolicyReports.Enabled {
		e.reports = report.NewWriter(c.Dynamic(), r.cfg.PolicyReports.Interval, e.reportWritten)
	}
	e.newBatch()
	return e
}

func (e *engine) run(ctx context.Context) {
	if e.reports != nil {
		done := make(chan struct{})
		defer func() { <-done }()
		wctx, cancel := context.WithCancel(ctx)
		defer cancel()
		go func() {
			defer close(done)
			e.reports.Run(wctx)
		}()
		e.checkReportCRDs()
	}
	e.src.events() // the initial state, which the first assessment covers
	e.startSweep()
	t := time.NewTicker(e.r.tick)
	defer t.Stop()
	for {
		e.step(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// step is one round of the loop: events, due evaluations, a slice of the full assessment,
// chains, records and reports.
func (e *engine) step(ctx context.Context) {
	now := e.now()
	for _, it := range e.src.events() {
		e.handle(it, now)
	}
	budget := max(1, int(float64(e.cfg.MaxObjectsPerSecond)*e.r.tick.Seconds()))
	budget = e.evaluateDue(ctx, now, budget)
	e.continueSweep(ctx, budget)
	// Chains follow object changes after debounce, and traffic (new edges, and edges that
	// leave the window) every attack_chains::interval while a flow source runs.
	changed := !e.chainsDue.IsZero() && !now.Before(e.chainsDue)
	traffic := now.Sub(e.lastChains) >= e.cfg.AttackChains.Interval && (flowgraph.Sources() > 0 || flowgraph.Version() != e.flowVersion)
	if e.firstDone && (changed || traffic) {
		e.evaluateChains("")
		e.evaluateClusterSkips("")
	}
	if e.sweep == nil && !now.Before(e.nextSweep) {
		e.startSweep()
	}
	e.flush(ctx)
	e.submitReports()
	e.recordCounts(ctx)
}

// handle turns one informer event into the evaluations it calls for.
func (e *engine) handle(it item, now time.Time) {
	if it.op == opHealth {
		missing := e.src.missing()
		if !sameMissing(missing, e.view.Missing) {
			e.view.Missing = missing
			e.view.InvalidateRBAC()
			e.view.InvalidatePods()
			e.logger.Info("What the receiver can read changed; assessing everything again")
			e.sweep = nil
			e.startSweep()
		}
		return
	}
	k, ok := keyOf(it.res, it.obj)
	if !ok {
		return
	}
	// An object is evaluated debounce after its first change: later changes within that
	// time join it, and one that keeps changing is still evaluated.
	due := now.Add(e.cfg.Debounce)
	mark := func(k objKey) {
		if _, ok := e.dirty[k]; !ok {
			e.dirty[k] = due
		}
	}
	chains := func() {
		if e.chainsDue.IsZero() {
			e.chainsDue = due
		}
	}
	switch it.res {
	case k8scache.Pods:
		pod, old := asPod(it.obj), asPod(it.old)
		if pod == nil {
			return
		}
		if checks.PodNeedsSpec(pod) {
			mark(k)
		}
		if it.op == opUpdate && old != nil && samePodPlacement(old, pod) {
			return
		}
		e.view.InvalidatePods()
		if pod.Spec.NodeName != "" {
			mark(objKey{res: k8scache.Nodes, name: pod.Spec.NodeName})
		}
		e.markServices(k.ns, mark)
		chains()
	case k8scache.Deployments, k8scache.StatefulSets, k8scache.DaemonSets, k8scache.ReplicaSets, k8scache.Jobs, k8scache.CronJobs:
		mark(k)
		e.markServices(k.ns, mark)
		chains()
	case k8scache.Services, k8scache.Ingresses:
		mark(k)
		chains()
	case k8scache.HorizontalPodAutoscalers:
		mark(k)
		e.markWorkloads(k.ns, mark)
	case k8scache.NetworkPolicies, k8scache.PodDisruptionBudgets:
		e.markWorkloads(k.ns, mark)
		chains()
	case k8scache.ServiceAccounts:
		e.view.InvalidateRBAC()
		e.markWorkloads(k.ns, mark)
		chains()
	case k8scache.ResourceQuotas, k8scache.LimitRanges:
		mark(objKey{res: k8scache.Namespaces, name: k.ns})
	case k8scache.Namespaces:
		mark(k)
		if it.op == opUpdate {
			if old, ok := it.old.(*corev1.Namespace); ok && equalAnnotations(old, it.obj.(*corev1.Namespace)) {
				return
			}
		}
		// The namespace's exemptions apply to everything in it.
		e.markNamespace(k.name, mark)
		chains()
	case k8scache.Roles, k8scache.ClusterRoles, k8scache.RoleBindings, k8scache.ClusterRoleBindings:
		e.view.InvalidateRBAC()
		mark(k)
		if it.res == k8scache.Roles || it.res == k8scache.ClusterRoles {
			// A binding's findings depend on the rules of its role.
			for _, res := range []*k8scache.Resource{k8scache.RoleBindings, k8scache.ClusterRoleBindings} {
				for _, obj := range e.view.Store(res).List() {
					if bk, ok := keyOf(res, obj); ok {
						mark(bk)
					}
				}
			}
		}
		chains()
	case k8scache.Nodes:
		mark(k)
	case k8scache.CustomResourceDefinitions:
		e.checkReportCRDs()
	}
}

func asPod(obj any) *slim.Pod {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	p, _ := obj.(*slim.Pod)
	return p
}

// samePodPlacement reports whether an update left what other objects' checks read of a pod
// alone: labels, node, requests, whether it still runs, and its spec generation. Most pod
// updates are status updates.
func samePodPlacement(a, b *slim.Pod) bool {
	done := func(p *slim.Pod) bool {
		return p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed
	}
	return a.Spec.NodeName == b.Spec.NodeName && done(a) == done(b) && a.Generation == b.Generation &&
		equalStrings(a.Labels, b.Labels) && apiequality.Semantic.DeepEqual(a.Spec.Resources, b.Spec.Resources)
}

func equalAnnotations(a, b *corev1.Namespace) bool { return equalStrings(a.Annotations, b.Annotations) }

func equalStrings(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func sameMissing(a, b map[*k8scache.Resource]error) bool {
	if len(a) != len(b) {
		return false
	}
	for k := range a {
		if _, ok := b[k]; !ok {
			return false
		}
	}
	return true
}

var workloadResources = []*k8scache.Resource{
	k8scache.Deployments, k8scache.StatefulSets, k8scache.DaemonSets, k8scache.ReplicaSets, k8scache.Jobs, k8scache.CronJobs, k8scache.Pods,
}

// markWorkloads marks the workloads of namespace ns (and the pods no template describes).
func (e *engine) markWorkloads(ns string, mark func(objKey)) {
	for _, res := range workloadResources {
		for _, obj := range e.view.Store(res).InNamespace(ns) {
			if p, ok := obj.(*slim.Pod); ok && !checks.PodNeedsSpec(p) {
				continue
			}
			if k, ok := keyOf(res, obj); ok {
				mark(k)
			}
		}
	}
}

func (e *engine) markServices(ns string, mark func(objKey)) {
	for _, obj := range e.view.Store(k8scache.Services).InNamespace(ns) {
		if k, ok := keyOf(k8scache.Services, obj); ok {
			mark(k)
		}
	}
}

// markNamespace marks every subject of namespace ns.
func (e *engine) markNamespace(ns string, mark func(objKey)) {
	e.markWorkloads(ns, mark)
	for _, res := range []*k8scache.Resource{k8scache.Services, k8scache.Ingresses, k8scache.HorizontalPodAutoscalers, k8scache.Roles, k8scache.RoleBindings} {
		for _, obj := range e.view.Store(res).InNamespace(ns) {
			if k, ok := keyOf(res, obj); ok {
				mark(k)
			}
		}
	}
}

// evaluateDue evaluates the marked objects whose debounce has passed, at most budget of
// them, and returns the budget left.
func (e *engine) evaluateDue(ctx context.Context, now time.Time, budget int) int {
	for k, due := range e.dirty {
		if budget <= 0 {
			break
		}
		if due.After(now) {
			continue
		}
		delete(e.dirty, k)
		e.evaluate(ctx, k, "")
		budget--
	}
	return budget
}

// startSweep begins a full assessment: every object, paced by max_objects_per_second.
func (e *engine) startSweep() {
	now := e.now()
	e.sweepID = fmt.Sprintf("%d", now.UnixNano())
	e.sweepStarted = now
	e.nextSweep = now.Add(e.cfg.Interval)
	e.sweep = []objKey{}
	for _, res := range checks.SubjectResources {
		for _, obj := range e.view.Store(res).List() {
			if p, ok := obj.(*slim.Pod); ok && !checks.PodNeedsSpec(p) {
				continue
			}
			if k, ok := keyOf(res, obj); ok {
				e.sweep = append(e.sweep, k)
			}
		}
	}
	// Objects evaluated before but not listed now went away unseen; they are resolved.
	for k := range e.objects {
		e.sweep = append(e.sweep, k)
	}
}

// continueSweep evaluates up to budget objects of the running full assessment and, after
// the last, completes it.
func (e *engine) continueSweep(ctx context.Context, budget int) {
	if e.sweep == nil {
		return
	}
	for ; budget > 0 && len(e.sweep) > 0; budget-- {
		k := e.sweep[len(e.sweep)-1]
		e.sweep = e.sweep[:len(e.sweep)-1]
		if st := e.objects[k]; st != nil && st.seen == e.sweepID {
			continue // listed twice: it was evaluated already
		}
		delete(e.dirty, k)
		e.evaluate(ctx, k, e.sweepID)
	}
	if len(e.sweep) > 0 {
		return
	}
	e.sweep = nil
	e.evaluateChains(e.sweepID)
	e.evaluateClusterSkips(e.sweepID)
	e.completeSweep()
}

// evaluate evaluates one object and emits what changed; with an assessment id (a full
// assessment) it also re-affirms the findings that still hold.
func (e *engine) evaluate(ctx context.Context, k objKey, assessment string) {
	e.r.tb.K8sRiskEvaluations.Add(ctx, 1)
	obj, exists := e.view.Store(k.res).Get(k.ns, k.name)
	st := e.objects[k]
	if !exists {
		e.forget(k, st, schema.RiskResolutionDeleted)
		return
	}
	m, _ := obj.(metav1.Object)
	if st != nil && st.uid != m.GetUID() {
		e.forget(k, st, schema.RiskResolutionDeleted) // replaced by an object of the same name
		st = nil
	}
	ns := m.GetNamespace()
	if k.res == k8scache.Namespaces {
		ns = m.GetName()
	}
	if !e.cfg.Namespaces.assessed(ns) && (ns != "" || k.res == k8scache.Namespaces) {
		e.forget(k, st, schema.RiskResolutionExcluded)
		return
	}
	if p, ok := obj.(*slim.Pod); ok && checks.PodNeedsSpec(p) {
		e.readPod(ctx, p)
	}
	s, ok := checks.NewSubject(e.view, k.res, obj)
	if !ok {
		e.forget(k, st, schema.RiskResolutionFixed) // e.g. a ReplicaSet adopted by a Deployment
		return
	}
	if st == nil {
		st = &objState{uid: m.GetUID(), object: s.Object, findings: map[string]*finding{}}
		e.objects[k] = st
		if e.byNS[s.Object.Namespace] == nil {
			e.byNS[s.Object.Namespace] = map[objKey]*objState{}
		}
		e.byNS[s.Object.Namespace][k] = st
	}
	st.object = s.Object
	if assessment != "" {
		st.seen = assessment
	}
	objEx := checks.ParseExemption(s.Meta.Annotations)
	nsEx := e.namespaceExemption(s.Object.Namespace)
	now := e.now()
	for _, c := range e.checks {
		if c.Eval == nil || !c.AppliesTo(s.Object.Kind) {
			continue
		}
		if e.skipReasons(c) != nil {
			continue // one cluster-wide skip says it
		}
		out := safeEval(c, e.view, s)
		var next *finding
		passed := false
		switch {
		case !out.Applies:
		case out.Skip == "" && len(out.Evidence) == 0:
			passed = true
		default:
			next = e.objectFinding(c, s, out, now, objEx, nsEx)
		}
		e.setPassed(st, c, passed)
		e.transition(s.Object.Namespace, st.findings[c.ID], next, assessment, schema.RiskResolutionFixed)
		if next != nil {
			st.findings[c.ID] = next
		} else {
			delete(st.findings, c.ID)
		}
	}
}

// safeEval runs a check; a check that panics on an odd object reports error for it
// instead of stopping the receiver.
func safeEval(c *checks.Check, v *checks.View, s *checks.Subject) (out checks.Outcome) {
	defer func() {
		if p := recover(); p != nil {
			out = checks.Outcome{Applies: true, Skip: fmt.Sprintf("evaluation failed: %v\n%s", p, debug.Stack())}
			out.Evidence = []schema.RiskEvidence{{Path: "(check)", Value: "panicked"}}
		}
	}()
	return c.Eval(v, s)
}

// forget resolves every finding of an object the engine no longer evaluates.
func (e *engine) forget(k objKey, st *objState, resolution string) {
	if st == nil {
		return
	}
	for id, f := range st.findings {
		e.transition(st.object.Namespace, f, nil, "", resolution)
		delete(st.findings, id)
	}
	for _, c := range e.checks {
		e.setPassed(st, c, false)
	}
	delete(e.objects, k)
	if m := e.byNS[st.object.Namespace]; m != nil {
		delete(m, k)
		if len(m) == 0 {
			delete(e.byNS, st.object.Namespace)
		}
	}
	delete(e.podSpecs, st.uid)
	e.reportDirty[st.object.Namespace] = true
}

func (e *engine) setPassed(st *objState, c *checks.Check, passed bool) {
	bit := uint64(1) << e.index[c]
	was := st.passed&bit != 0
	if was == passed {
		return
	}
	k := countKey{c.Pillar, c.Severity, schema.RiskResultPass}
	if passed {
		st.passed |= bit
		e.counts[k]++
	} else {
		st.passed &^= bit
		e.counts[k]--
	}
	e.countsChanged = true
	e.reportDirty[st.object.Namespace] = true
}

func (e *engine) namespaceExemption(ns string) *checks.Exemption {
	if ns == "" {
		return nil
	}
	obj, ok := e.view.Store(k8scache.Namespaces).Get("", ns)
	if !ok {
		return nil
	}
	return checks.ParseExemption(obj.(*corev1.Namespace).Annotations)
}

// readPod reads the spec of a pod no template describes, once per spec generation: the
// cache keeps little of a pod, so that every cached pod stays small.
func (e *engine) readPod(ctx context.Context, p *slim.Pod) {
	if ps, ok := e.podSpecs[p.UID]; ok && ps.Generation == p.Generation && (ps.Err == nil || unavailable(ps.Err)) {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	full, err := e.cache.Clientset().CoreV1().Pods(p.Namespace).Get(ctx, p.Name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		return // deleted; its delete event follows
	case err == nil && full.UID != p.UID:
		return // replaced; the new pod's events follow
	case err != nil:
		e.podSpecs[p.UID] = &checks.PodSpec{UID: p.UID, Generation: p.Generation, Err: fmt.Errorf("reading the pod's spec: %w", err)}
		return
	}
	k8scache.SlimPodSpec(&full.Spec)
	ps := &checks.PodSpec{UID: p.UID, Generation: full.Generation, Spec: &full.Spec}
	for k, v := range full.Annotations {
		if strings.HasPrefix(k, "risk.kestrel.ai/") {
			if ps.Annotations == nil {
				ps.Annotations = map[string]string{}
			}
			ps.Annotations[k] = v
		}
	}
	e.podSpecs[p.UID] = ps
}

// skipReasons returns why check c cannot be evaluated anywhere, nil when it can.
func (e *engine) skipReasons(c *checks.Check) []string {
	var out []string
	for _, res := range c.Needs {
		if err, ok := e.view.Missing[res]; ok {
			out = append(out, err.Error())
		}
	}
	if c.NeedsFlows && e.view.FlowSources() == 0 {
		out = append(out, "no flow source runs in this collector: add the hubble receiver to observe traffic")
	}
	return out
}

// evaluateClusterSkips emits one cluster-wide skip per check that cannot be evaluated, or
// cannot be evaluated on some kinds of objects, because what it reads cannot be read.
func (e *engine) evaluateClusterSkips(assessment string) {
	now := e.now()
	for _, c := range e.checks {
		reasons := e.skipReasons(c)
		for _, res := range checks.SubjectResources {
			if err, ok := e.view.Missing[res]; ok && c.Eval != nil && kindsOf(res, c) {
				reasons = append(reasons, err.Error())
			}
		}
		var next *finding
		if len(reasons) > 0 {
			next = &finding{
				fp: fingerprint(c.ID, "cluster"), check: c, object: schema.RiskObject{Kind: "Cluster"},
				result: schema.RiskResultSkip, firstSeen: now,
				message: fmt.Sprintf("%s: not evaluated (all or some objects): %s", c.Title, strings.Join(reasons, "; ")),
			}
			next.seal()
		}
		prev := e.cluster[c.ID]
		if prev != nil && next != nil {
			next.firstSeen = prev.firstSeen
		}
		e.transition("", prev, next, assessment, schema.RiskResolutionFixed)
		if next != nil {
			e.cluster[c.ID] = next
		} else {
			delete(e.cluster, c.ID)
		}
	}
}

// kindsOf reports whether check c evaluates objects of res.
func kindsOf(res *k8scache.Resource, c *checks.Check) bool {
	for _, kind := range c.Kinds {
		if kindResources[kind] == res {
			return true
		}
	}
	return false
}

var kindResources = map[string]*k8scache.Resource{
	checks.KindDeployment: k8scache.Deployments, checks.KindStatefulSet: k8scache.StatefulSets, checks.KindDaemonSet: k8scache.DaemonSets,
	checks.KindReplicaSet: k8scache.ReplicaSets, checks.KindJob: k8scache.Jobs, checks.KindCronJob: k8scache.CronJobs, checks.KindPod: k8scache.Pods,
	checks.KindService: k8scache.Services, checks.KindIngress: k8scache.Ingresses, checks.KindHPA: k8scache.HorizontalPodAutoscalers,
	checks.KindNamespace: k8scache.Namespaces, checks.KindNode: k8scache.Nodes,
	checks.KindRole: k8scache.Roles, checks.KindClusterRole: k8scache.ClusterRoles,
	checks.KindRoleBinding: k8scache.RoleBindings, checks.KindClusterRoleBinding: k8scache.ClusterRoleBindings,
}

// evaluateChains computes every attack chain again and emits what changed.
func (e *engine) evaluateChains(assessment string) {
	now := e.now()
	e.chainsDue = time.Time{}
	e.lastChains = now
	e.flowVersion = flowgraph.Version()
	e.edges = flowgraph.Edges(now.Add(-e.cfg.AttackChains.FlowWindow), now)
	found := map[string]*finding{}
	for _, c := range e.checks {
		if c.Chains == nil {
			continue
		}
		if e.skipReasons(c) != nil {
			// Keep what was found while the data was there; the cluster-wide skip says why
			// it is not current.
			for fp, f := range e.chains {
				if f.check == c {
					found[fp] = f
				}
			}
			continue
		}
		for _, ch := range safeChains(c, e.view, e.logger) {
			ns := ch.Anchor.Namespace
			if ch.Anchor.Kind == checks.KindNamespace {
				ns = ch.Anchor.Name
			}
			if !e.cfg.Namespaces.assessed(ns) {
				continue
			}
			f := &finding{
				fp: fingerprint(c.ID, ch.Anchor.UID), check: c, object: ch.Anchor,
				workloadKind: ch.WorkloadKind, workloadName: ch.WorkloadName,
				result: c.Failing(), steps: ch.Steps, message: ch.Message, firstSeen: now,
			}
			var objEx *checks.Exemption
			if ch.AnchorMeta != nil {
				objEx = checks.ParseExemption(ch.AnchorMeta.Annotations)
			}
			e.exempt(f, now, objEx, e.namespaceExemption(ns))
			f.seal()
			found[f.fp] = f
		}
	}
	for fp, prev := range e.chains {
		e.transition(reportNS(prev.object), prev, found[fp], assessment, schema.RiskResolutionFixed)
	}
	for fp, next := range found {
		if _, ok := e.chains[fp]; !ok {
			e.transition(reportNS(next.object), nil, next, assessment, "")
		}
	}
	e.chains = found
}

func safeChains(c *checks.Check, v *checks.View, logger *zap.Logger) (out []checks.Chain) {
	defer func() {
		if p := recover(); p != nil {
			logger.Error("An attack-chain check failed", zap.String("check", c.ID), zap.Any("panic", p), zap.ByteString("stack", debug.Stack()))
			out = nil
		}
	}()
	return c.Chains(v)
}

// reportNS is the namespace whose report lists findings about o ("" for the cluster's).
func reportNS(o schema.RiskObject) string { return o.Namespace }

func (e *engine) completeSweep() {
	now := e.now()
	counts := make([]schema.RiskCount, 0, len(e.counts))
	for k, n := range e.counts {
		if n > 0 {
			counts = append(counts, schema.RiskCount{Pillar: k.pillar, Severity: k.severity, Result: k.result, Count: int32(min(n, 1<<31-1))})
		}
	}
	sortCounts(counts)
	lr := e.record(schema.EventRiskAssessment, now)
	lr.SetSeverityNumber(plog.SeverityNumberInfo)
	objects := 0
	for _, st := range e.objects {
		if st.seen == e.sweepID {
			objects++
		}
	}
	schema.RiskAssessmentFields.Put(lr.Attributes(), &schema.RiskAssessment{
		ID: e.sweepID, Started: e.sweepStarted, Objects: int32(min(objects, 1<<31-1)), Counts: counts,
	})
	lr.Body().SetStr(fmt.Sprintf("Full assessment of %d objects in %v", objects, now.Sub(e.sweepStarted).Round(time.Millisecond)))
	e.r.tb.K8sRiskAssessments.Add(context.Background(), 1)
	e.r.tb.K8sRiskAssessmentDuration.Record(context.Background(), now.Sub(e.sweepStarted).Seconds())
	e.logger.Debug("Full assessment complete", zap.Int("objects", objects), zap.Duration("duration", now.Sub(e.sweepStarted)))
	if e.reports != nil {
		for ns := range e.byNS {
			e.reportDirty[ns] = true
		}
		e.reportDirty[""] = true
		if !e.firstDone {
			keep := map[string]bool{}
			for ns := range e.reportDirty {
				keep[ns] = true
			}
			e.reports.Prune(keep)
		}
		e.reports.Retry() // rewrite reports someone else changed or deleted
	}
	e.firstDone = true
}

// fingerprint is a finding's stable id: the same check on the same object (by UID) always
// has the same one.
func fingerprint(checkID, uid string) string {
	sum := sha256.Sum256([]byte(checkID + "\x00" + uid))
	return hex.EncodeToString(sum[:16])
}

// popcount of the checks that passed, for reports.
func passedCount(st *objState) int { return bits.OnesCount64(st.passed) }
