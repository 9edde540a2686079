package k8sinventoryreceiver // import "github.com/kestrelai/otelcol-kestrel/receiver/k8sinventoryreceiver"

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.uber.org/zap"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/tools/cache"

	"github.com/kestrelai/otelcol-kestrel/internal/k8scache"
	"github.com/kestrelai/otelcol-kestrel/internal/k8scache/slim"
	"github.com/kestrelai/otelcol-kestrel/internal/podowner"
	kschema "github.com/kestrelai/otelcol-kestrel/internal/schema"
)

const (
	authzCRD   = "authorizationpolicies.security.istio.io"
	authzGroup = "security.istio.io"
	// authzMaxWait caps the backoff between looks for a just-installed AuthorizationPolicy
	// API that the apiserver does not serve yet.
	authzMaxWait = 30 * time.Second
)

// authzVersions are the served versions we can read, preferred first.
var authzVersions = []string{"v1", "v1beta1"}

// policyRecord emits a policy, with attributes written by put, unless it is an update
// that changed neither the object nor the workloads it selects. body builds the record's body, or reports the object as
// invalid and returns false; it runs only for a record to emit, since each batch of pod
// changes rechecks every policy of their namespaces.
func (c *collector) policyRecord(op opKind, eventName string, put func(pcommon.Map, *kschema.Policy), obj metav1.Object, apiVersion string, sel labels.Selector, body func() (map[string]any, bool)) {
	uid := obj.GetUID()
	if op == opDelete {
		delete(c.policies, uid)
		lr := c.record(eventName, plog.SeverityNumberInfo)
		put(lr.Attributes(), &kschema.Policy{Object: obj, APIVersion: apiVersion})
		lr.Attributes().PutStr(kschema.AttrAction, actions[op])
		return
	}
	targets := c.targets(obj.GetNamespace(), sel)
	key := obj.GetResourceVersion() + "|" + strings.Join(targets, ",")
	if prev, known := c.policies[uid]; op == opUpdate && known && prev == key {
		return
	}
	raw, ok := body()
	if !ok {
		return
	}
	c.policies[uid] = key
	lr := c.record(eventName, plog.SeverityNumberInfo)
	put(lr.Attributes(), &kschema.Policy{Object: obj, APIVersion: apiVersion, Targets: targets})
	lr.Attributes().PutStr(kschema.AttrAction, actions[op])
	if err := lr.Body().SetEmptyMap().FromRaw(raw); err != nil {
		c.logger.Debug("Cannot convert a policy", zap.String("policy", obj.GetNamespace()+"/"+obj.GetName()), zap.Error(err))
	}
}

func (c *collector) networkPolicy(op opKind, np *networkingv1.NetworkPolicy) {
	sel, err := metav1.LabelSelectorAsSelector(&np.Spec.PodSelector)
	if err != nil {
		c.invalidObject(k8scache.NetworkPolicies.Name, np, err)
		return
	}
	c.policyRecord(op, kschema.EventInventoryNetworkPolicy, kschema.NetworkPolicyFields.Put, np, "networking.k8s.io/v1", sel, func() (map[string]any, bool) {
		var body struct {
			Spec networkingv1.NetworkPolicySpec `json:"spec"`
		}
		body.Spec = np.Spec
		raw, err := toRaw(&body)
		if err != nil {
			c.invalidObject(k8scache.NetworkPolicies.Name, np, err)
			return nil, false
		}
		return raw, true
	})
}

func (c *collector) authorizationPolicy(op opKind, u *unstructured.Unstructured) {
	spec, _, err := unstructured.NestedMap(u.Object, "spec")
	if err != nil {
		c.invalidObject(c.authzResName(), u, err)
		return
	}
	sel := labels.Everything()
	if ml, ok, _ := unstructured.NestedStringMap(spec, "selector", "matchLabels"); ok {
		sel = labels.SelectorFromSet(ml)
	}
	c.policyRecord(op, kschema.EventInventoryAuthorizationPolicy, kschema.AuthorizationPolicyFields.Put, u, u.GetAPIVersion(), sel, func() (map[string]any, bool) {
		if _, err := kschema.ParseAuthorizationPolicySpec(spec); err != nil {
			c.invalidObject(c.authzResName(), u, err)
			return nil, false
		}
		return map[string]any{"spec": spec}, true
	})
}

func (c *collector) authzResName() string {
	if c.authzRes == nil {
		return authzCRD
	}
	return c.authzRes.Name
}

// targets lists the workloads whose pods in ns sel selects, as "<ns>.<Kind>.<name>",
// from the pod cache (the Kestrel Operator listed pods for this on every policy event).
func (c *collector) targets(ns string, sel labels.Selector) []string {
	seen := map[string]struct{}{}
	for _, obj := range c.inNamespace(k8scache.Pods, ns) {
		p, ok := obj.(*slim.Pod)
		if !ok || !sel.Matches(labels.Set(p.Labels)) {
			continue
		}
		seen[c.ownerWorkload(p)] = struct{}{}
	}
	out := make([]string, 0, len(seen))
	for w := range seen {
		out = append(out, w)
	}
	slices.Sort(out)
	return out
}

// ownerWorkload names the top workload a pod belongs to, "<ns>.<Kind>.<name>", or the pod
// itself when no controller owns it.
func (c *collector) ownerWorkload(p *slim.Pod) string {
	if w, ok := c.owners[p.UID]; ok {
		return w
	}
	w := p.Namespace + ".Pod." + p.Name
	ref, ok := podowner.OwnerOf(p,
		func(ns, name string) *appsv1.ReplicaSet {
			rs, _ := c.get(k8scache.ReplicaSets, ns, name).(*appsv1.ReplicaSet)
			return rs
		},
		func(ns, name string) *batchv1.Job {
			j, _ := c.get(k8scache.Jobs, ns, name).(*batchv1.Job)
			return j
		})
	if ok {
		w = p.Namespace + "." + ref.Kind + "." + ref.Name
	}
	c.owners[p.UID] = w
	return w
}

func (c *collector) get(res *k8scache.Resource, ns, name string) any {
	for _, w := range c.byRes[res] {
		if w.inf.Namespace != "" && w.inf.Namespace != ns {
			continue
		}
		key := name
		if ns != "" {
			key = ns + "/" + name
		}
		if obj, ok, err := w.inf.GetIndexer().GetByKey(key); err == nil && ok {
			return obj
		}
	}
	return nil
}

func (c *collector) inNamespace(res *k8scache.Resource, ns string) []any {
	var out []any
	for _, w := range c.byRes[res] {
		if w.inf.Namespace != "" && w.inf.Namespace != ns {
			continue
		}
		objs, err := w.inf.GetIndexer().ByIndex(cache.NamespaceIndex, ns)
		if err == nil {
			out = append(out, objs...)
		}
	}
	return out
}

// refreshTargets re-resolves the policies of namespaces whose pods changed and emits
// those whose targets changed. Done once per batch of changes, not per pod; it ends the
// batch, so the pods' owners are resolved anew in the next one.
func (c *collector) refreshTargets() {
	defer clear(c.owners)
	if !c.snapshotDone || len(c.dirtyNS) == 0 {
		clear(c.dirtyNS)
		return
	}
	for ns := range c.dirtyNS {
		for _, obj := range c.inNamespace(k8scache.NetworkPolicies, ns) {
			if np, ok := obj.(*networkingv1.NetworkPolicy); ok {
				c.networkPolicy(opUpdate, np)
			}
		}
		if c.authzRes != nil {
			for _, obj := range c.inNamespace(c.authzRes, ns) {
				if u, ok := obj.(*unstructured.Unstructured); ok {
					c.authorizationPolicy(opUpdate, u)
				}
			}
		}
	}
	clear(c.dirtyNS)
}

// crd follows CustomResourceDefinitions: they decide integration presence and whether
// AuthorizationPolicies can be watched.
func (c *collector) crd(op opKind, m *metav1.PartialObjectMetadata) {
	c.recheckFlags = true
	if m.Name != authzCRD {
		return
	}
	if op == opDelete {
		c.stopAuthz()
		return
	}
	c.startAuthz()
}

// startAuthz starts watching AuthorizationPolicies if the apiserver serves them. When the
// CRD exists but its API is not served yet (just installed), or discovery failed, it
// looks again later with backoff.
func (c *collector) startAuthz() {
	if c.authzRes != nil {
		return
	}
	version, err := c.servedAuthzVersion()
	if err == nil && version == "" && c.get(k8scache.CustomResourceDefinitions, "", authzCRD) == nil {
		c.authzWait = 0
		return
	}
	if err != nil || version == "" {
		if err == nil {
			err = errors.New("the AuthorizationPolicy API is not served yet")
		}
		c.authzWait = min(max(2*c.authzWait, 250*time.Millisecond), authzMaxWait)
		c.logger.Debug("Waiting for the AuthorizationPolicy API", zap.Error(err), zap.Duration("retry_in", c.authzWait))
		if c.authzTmr != nil {
			c.authzTmr.Stop()
		}
		c.authzTmr = time.AfterFunc(c.authzWait, func() { c.q.push(item{op: opAuthzCheck}) })
		return
	}
	c.authzWait = 0
	c.authzRes = k8scache.Dynamic(schema.GroupVersionResource{Group: authzGroup, Version: version, Resource: "authorizationpolicies"}, true)
	for _, ns := range c.namespaces(c.authzRes) {
		c.watch(c.authzRes, ns)
	}
	c.logger.Info("Watching Istio AuthorizationPolicies", zap.String("api_version", authzGroup+"/"+version))
}

func (c *collector) stopAuthz() {
	if c.authzTmr != nil {
		c.authzTmr.Stop()
	}
	// unwatch edits the list in place.
	for _, w := range slices.Clone(c.byRes[c.authzRes]) {
		c.unwatch(w)
	}
	delete(c.byRes, c.authzRes)
	c.authzRes = nil
}

// servedAuthzVersion asks discovery which AuthorizationPolicy version to read: the first
// of authzVersions the group lists. "" means none is served (yet): a version the group
// lists whose resources are not published yet is waited for, not skipped, so the choice
// does not depend on timing.
func (c *collector) servedAuthzVersion() (string, error) {
	groups, err := c.cache.Discovery().ServerGroups()
	if err != nil {
		return "", fmt.Errorf("discovering API groups: %w", err)
	}
	var listed []string
	for _, g := range groups.Groups {
		if g.Name == authzGroup {
			for _, v := range g.Versions {
				listed = append(listed, v.Version)
			}
		}
	}
	for _, v := range authzVersions {
		if !slices.Contains(listed, v) {
			continue
		}
		list, err := c.cache.Discovery().ServerResourcesForGroupVersion(authzGroup + "/" + v)
		if err != nil {
			if apierrors.IsNotFound(err) {
				return "", nil
			}
			return "", fmt.Errorf("discovering %s/%s: %w", authzGroup, v, err)
		}
		for _, r := range list.APIResources {
			if r.Name == "authorizationpolicies" {
				return v, nil
			}
		}
		return "", nil
	}
	return "", nil
}
