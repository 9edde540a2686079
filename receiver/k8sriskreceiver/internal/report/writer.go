package report

import (
	"context"
	"hash/fnv"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/dynamic"
)

// Outcomes of a write, as the receiver's metric names them.
const (
	Applied   = "applied"
	Unchanged = "unchanged"
	Failed    = "failed"
)

// Writer applies reports on its own goroutine, so that the apiserver's latency never holds
// up evaluation: Submit replaces the pending report of a namespace, and Run applies each at
// most once per interval, skipping reports equal to the last one applied.
type Writer struct {
	dyn      dynamic.Interface
	interval time.Duration
	// Done is told the outcome of every write, and its error when it failed.
	Done func(outcome string, err error)

	mu        sync.Mutex
	pending   map[string]*unstructured.Unstructured
	applied   map[string]uint64
	lastWrite map[string]time.Time
	keep      map[string]bool // namespaces whose reports stay, set by Prune
	prune     bool
	signal    chan struct{}
}

// NewWriter returns a writer that writes with dyn at most once per interval per report.
func NewWriter(dyn dynamic.Interface, interval time.Duration, done func(outcome string, err error)) *Writer {
	return &Writer{
		dyn: dyn, interval: interval, Done: done,
		pending: map[string]*unstructured.Unstructured{}, applied: map[string]uint64{}, lastWrite: map[string]time.Time{},
		signal: make(chan struct{}, 1),
	}
}

// Submit queues the report of namespace ns ("" for the cluster's), replacing one not
// written yet.
func (w *Writer) Submit(ns string, report *unstructured.Unstructured) {
	w.mu.Lock()
	w.pending[ns] = report
	w.mu.Unlock()
	w.wake()
}

// Prune asks to delete our reports in the namespaces not in keep (left from an earlier
// configuration).
func (w *Writer) Prune(keep map[string]bool) {
	w.mu.Lock()
	w.keep, w.prune = keep, true
	w.mu.Unlock()
	w.wake()
}

// Retry makes every report be applied again, e.g. once the CRDs exist.
func (w *Writer) Retry() {
	w.mu.Lock()
	clear(w.applied)
	w.mu.Unlock()
	w.wake()
}

func (w *Writer) wake() {
	select {
	case w.signal <- struct{}{}:
	default:
	}
}

// Pending returns the number of reports waiting to be written.
func (w *Writer) Pending() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.pending)
}

// Run writes until ctx ends.
func (w *Writer) Run(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-w.signal:
		case <-t.C:
		}
		w.writeDue(ctx)
	}
}

func (w *Writer) writeDue(ctx context.Context) {
	now := time.Now()
	w.mu.Lock()
	var due []string
	for ns := range w.pending {
		if now.Sub(w.lastWrite[ns]) >= w.interval {
			due = append(due, ns)
		}
	}
	prune, keep := w.prune, w.keep
	w.prune = false
	w.mu.Unlock()
	for _, ns := range due {
		if ctx.Err() != nil {
			return
		}
		w.mu.Lock()
		rep := w.pending[ns]
		delete(w.pending, ns)
		last, known := w.applied[ns]
		w.mu.Unlock()
		body, err := rep.MarshalJSON()
		if err != nil {
			w.Done(Failed, err)
			continue
		}
		h := fnv.New64a()
		_, _ = h.Write(body)
		sum := h.Sum64()
		if known && last == sum {
			w.Done(Unchanged, nil)
			continue
		}
		err = w.apply(ctx, ns, rep)
		w.mu.Lock()
		w.lastWrite[ns] = time.Now()
		if err == nil {
			w.applied[ns] = sum
		} else if _, newer := w.pending[ns]; !newer {
			w.pending[ns] = rep // try again at the next interval
		}
		w.mu.Unlock()
		if err != nil {
			w.Done(Failed, err)
			continue
		}
		w.Done(Applied, nil)
	}
	if prune {
		if err := w.pruneStale(ctx, keep); err != nil {
			w.Done(Failed, err)
		}
	}
}

func (w *Writer) apply(ctx context.Context, ns string, rep *unstructured.Unstructured) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	opts := metav1.ApplyOptions{FieldManager: FieldManager, Force: true}
	if ns == "" {
		_, err := w.dyn.Resource(ClusterPolicyReports).Apply(ctx, Name, rep, opts)
		return err
	}
	_, err := w.dyn.Resource(PolicyReports).Namespace(ns).Apply(ctx, Name, rep, opts)
	return err
}

// pruneStale deletes our PolicyReports outside keep; its error is the first that happened.
func (w *Writer) pruneStale(ctx context.Context, keep map[string]bool) error {
	list, err := w.dyn.Resource(PolicyReports).List(ctx, metav1.ListOptions{LabelSelector: ManagedByLabel + "=" + ManagedBy})
	if err != nil {
		return err
	}
	var first error
	for _, item := range list.Items {
		if item.GetName() != Name || keep[item.GetNamespace()] {
			continue
		}
		err := w.dyn.Resource(PolicyReports).Namespace(item.GetNamespace()).Delete(ctx, Name, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) && first == nil {
			first = err
		}
	}
	return first
}
