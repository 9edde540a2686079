// Package changerequest turns the changes Kestrel Cloud proposes (YamlApplyRequest, pushed
// NetworkPolicies) into ChangeRequests (kestrel.ai/v1alpha1) in the cluster, and applies
// them only once a person with the approve right decided Approved (or an administrator's
// auto_approve rule covers them). It watches its ChangeRequests with an informer, applies an
// approved one once with server-side apply (no force), records the outcome in its status and
// as Events, expires those left undecided, and sends the final result to the cloud.
package changerequest // import "github.com/kestrelai/otelcol-kestrel/receiver/kestreltoolsreceiver/internal/changerequest"

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"
	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/yaml"

	cloudv1 "github.com/kestrelai/otelcol-kestrel/api/cloud/v1"
	"github.com/kestrelai/otelcol-kestrel/api/kestrel/v1alpha1"
	"github.com/kestrelai/otelcol-kestrel/receiver/kestreltoolsreceiver/internal/audit"
	"github.com/kestrelai/otelcol-kestrel/receiver/kestreltoolsreceiver/internal/dryrun"
	"github.com/kestrelai/otelcol-kestrel/receiver/kestreltoolsreceiver/internal/manifest"
	"github.com/kestrelai/otelcol-kestrel/receiver/kestreltoolsreceiver/internal/ssa"
)

// Tool names in the audit trail and the self-metrics.
const (
	ApplyTool    = "yaml_apply"
	PolicyTool   = "policy_push"
	DecisionTool = "change_decision"
)

// Audit outcomes of proposals and decisions, besides audit's own.
const (
	Pending  = "pending"
	Rejected = "rejected"
	Expired  = "expired"
)

// NotEnabled starts every answer to an apply in a cluster without the write profile.
const NotEnabled = "apply is not enabled in this cluster"

const (
	// maxObjects is the most objects one ChangeRequest holds (the CRD's bound).
	maxObjects = 32
	// maxYAML and maxDiff bound one object's YAML and diff in a ChangeRequest (the CRD's
	// bounds are larger; these keep the whole object well below etcd's limit).
	maxYAML = 128 << 10
	maxDiff = 16 << 10
	// resync re-reads all ChangeRequests, which retries reports the cloud missed.
	resync = time.Minute
	// startTimeout bounds the checks at start.
	startTimeout = 10 * time.Second
)

// Rule lets changes be applied without a decision: every object of the change must be of
// one of Kinds ("NetworkPolicy" or "networking.k8s.io/NetworkPolicy") and, when Namespaces
// is not empty, in one of them.
//
// For integration writes (DatadogQueryRequest) a rule lists Operations instead: the
// query_type names it approves, e.g. FLUX_RECONCILE, optionally limited to Namespaces.
type Rule struct {
	Kinds      []string `mapstructure:"kinds"`
	Operations []string `mapstructure:"operations"`
	Namespaces []string `mapstructure:"namespaces"`

	// prevent unkeyed literal initialization
	_ struct{}
}

// Config configures the controller.
type Config struct {
	// Enabled is the administrator's switch; off, every apply is answered NotEnabled.
	Enabled bool
	// Namespace holds the ChangeRequests.
	Namespace string
	// Expiry is how long a ChangeRequest waits for a decision.
	Expiry time.Duration
	// DryRunTimeout and MaxDryRunTimeout bound the dry-run of a proposal (the request's
	// timeout_seconds, capped); ApplyTimeout bounds the apply of a decision.
	DryRunTimeout    time.Duration
	MaxDryRunTimeout time.Duration
	ApplyTimeout     time.Duration
	AutoApprove      []Rule
	Limits           manifest.Limits
}

// Sender sends a message to the cloud (the kestrel_command connection).
type Sender interface {
	Send(ctx context.Context, payload proto.Message) error
}

// Controller proposes and applies changes as one identity (the write profile).
type Controller struct {
	cfg     Config
	applier *ssa.Applier
	crs     dynamic.NamespaceableResourceInterface
	dyn     dynamic.Interface
	cs      kubernetes.Interface
	conn    Sender
	trail   *audit.Trail
	logger  *zap.Logger
	queue   workqueue.TypedRateLimitingInterface[string]

	// claimed and sent are the ChangeRequests this process claimed for applying and whose
	// result it sent to the cloud. The informer's copy can lag behind the process's own
	// writes; these keep a stale "Applying" from being applied again and a stale
	// "not reported" from being sent twice. Only the one worker goroutine uses them.
	claimed map[types.UID]bool
	sent    map[types.UID]bool

	// ctx ends the workers at Stop.
	ctx      context.Context
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	stopOnce sync.Once

	mu          sync.Mutex
	external    External
	self        string // the identity's user name, once known
	running     bool
	informer    cache.SharedIndexInformer
	broadcaster record.EventBroadcaster
	recorder    record.EventRecorder
}

// New returns a controller that runs as the identity of rc; it starts watching with the
// first proposal, once the cluster allows it.
func New(cfg Config, rc *rest.Config, applier *ssa.Applier, conn Sender, trail *audit.Trail, logger *zap.Logger) (*Controller, error) {
	dyn, err := dynamic.NewForConfig(rc)
	if err != nil {
		return nil, err
	}
	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return nil, err
	}
	c := &Controller{cfg: cfg, applier: applier, dyn: dyn, crs: dyn.Resource(v1alpha1.GroupVersionResource),
		cs: cs, conn: conn, trail: trail, logger: logger,
		queue:   workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[string]()),
		claimed: map[types.UID]bool{}, sent: map[types.UID]bool{}}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	return c, nil
}

// Start watches the ChangeRequests when the cluster allows this identity to; otherwise the
// first proposal tries again.
func (c *Controller) Start(ctx context.Context) {
	if !c.cfg.Enabled {
		return
	}
	// Bounded: an apiserver that does not answer must not hold up the collector's start.
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	if err := c.ensureRunning(ctx); err != nil {
		c.logger.Info("Not watching ChangeRequests yet: applies are answered as not enabled until this works", zap.Error(err))
	}
}

// Stop ends the workers and the informer; calling it again does nothing.
func (c *Controller) Stop() {
	c.stopOnce.Do(c.stop)
}

func (c *Controller) stop() {
	c.cancel()
	c.queue.ShutDown()
	c.wg.Wait()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.broadcaster != nil {
		c.broadcaster.Shutdown()
	}
}

// ensureRunning checks that the identity may work with ChangeRequests and starts the
// informer and the worker once.
func (c *Controller) ensureRunning(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.running {
		return nil
	}
	if !c.cfg.Enabled {
		return errors.New("changes::apply::enabled is false")
	}
	if c.self == "" {
		review, err := c.cs.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
		if err != nil {
			return fmt.Errorf("the change identity cannot be used: %w", err)
		}
		c.self = review.Status.UserInfo.Username
	}
	for _, a := range []authorizationv1.ResourceAttributes{
		{Namespace: c.cfg.Namespace, Verb: "create", Group: v1alpha1.Group, Resource: v1alpha1.Resource},
		{Namespace: c.cfg.Namespace, Verb: "watch", Group: v1alpha1.Group, Resource: v1alpha1.Resource},
		{Namespace: c.cfg.Namespace, Verb: "update", Group: v1alpha1.Group, Resource: v1alpha1.Resource, Subresource: "status"},
	} {
		r, err := c.cs.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, &authorizationv1.SelfSubjectAccessReview{
			Spec: authorizationv1.SelfSubjectAccessReviewSpec{ResourceAttributes: &a}}, metav1.CreateOptions{})
		if err != nil {
			return fmt.Errorf("checking the change identity's rights: %w", err)
		}
		if !r.Status.Allowed {
			sub := ""
			if a.Subresource != "" {
				sub = "/" + a.Subresource
			}
			return fmt.Errorf("%s may not %s changerequests%s.kestrel.ai in namespace %s (install the write profile, config/rbac/changes.yaml)", c.self, a.Verb, sub, c.cfg.Namespace)
		}
	}
	if _, err := c.crs.Namespace(c.cfg.Namespace).List(ctx, metav1.ListOptions{Limit: 1}); err != nil {
		return fmt.Errorf("listing ChangeRequests (is the CRD in config/crd installed?): %w", err)
	}
	c.broadcaster = record.NewBroadcaster(record.WithContext(c.ctx))
	c.broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: c.cs.CoreV1().Events(c.cfg.Namespace)})
	c.recorder = c.broadcaster.NewRecorder(scheme.Scheme, corev1.EventSource{Component: ssa.FieldManager})
	f := dynamicinformer.NewFilteredDynamicSharedInformerFactory(c.dyn, resync, c.cfg.Namespace, nil)
	c.informer = f.ForResource(v1alpha1.GroupVersionResource).Informer()
	enqueue := func(obj any) {
		if key, err := cache.MetaNamespaceKeyFunc(obj); err == nil {
			c.queue.Add(key)
		}
	}
	if _, err := c.informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    enqueue,
		UpdateFunc: func(_, obj any) { enqueue(obj) },
	}); err != nil {
		return err
	}
	c.wg.Add(2)
	go func() {
		defer c.wg.Done()
		c.informer.RunWithContext(c.ctx)
	}()
	go func() {
		defer c.wg.Done()
		if !cache.WaitForCacheSync(c.ctx.Done(), c.informer.HasSynced) {
			return
		}
		for c.next() {
		}
	}()
	c.running = true
	c.logger.Info("Watching ChangeRequests", zap.String("namespace", c.cfg.Namespace), zap.String("identity", c.self))
	return nil
}

// Identity is the user name changes are made as ("" until known).
func (c *Controller) Identity() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.self
}

// Name is the ChangeRequest name for a request or policy id: the same id always gives the
// same name, so a request the cloud sends again finds its ChangeRequest instead of a twin.
func Name(origin v1alpha1.Origin, id string) string {
	sum := sha256.Sum256([]byte(id))
	prefix := "apply-"
	switch origin {
	case v1alpha1.OriginPolicyPush:
		prefix = "policy-"
	case v1alpha1.OriginIntegration:
		prefix = "integration-"
	}
	return prefix + hex.EncodeToString(sum[:])[:16]
}

// proposal is a change on its way to becoming a ChangeRequest.
type proposal struct {
	origin    v1alpha1.Origin
	id        string
	manifests []*cloudv1.YamlManifest
	// timeoutSeconds is the request's (0: the default).
	timeoutSeconds int32
}

// proposed is what became of a proposal.
type proposed struct {
	// cr is the ChangeRequest (nil when nothing was proposed).
	cr *v1alpha1.ChangeRequest
	// code and msg say why nothing was proposed; checks are the dry-runs per manifest.
	code   int32
	msg    string
	checks []dryrun.Result
}

// propose dry-runs the manifests and creates the ChangeRequest.
func (c *Controller) propose(ctx context.Context, p proposal) proposed {
	if err := c.ensureRunning(ctx); err != nil {
		return proposed{code: http.StatusForbidden, msg: NotEnabled + ": " + err.Error()}
	}
	ctx, cancel := context.WithTimeout(ctx, dryrun.Timeout(p.timeoutSeconds, c.cfg.DryRunTimeout, c.cfg.MaxDryRunTimeout))
	defer cancel()
	var out proposed
	spec := v1alpha1.ChangeRequestSpec{Origin: p.origin, RequestedBy: c.Identity(),
		ExpiresAt: metav1.NewTime(time.Now().Add(c.cfg.Expiry).Truncate(time.Second))}
	var names []string
	var objects [][]*unstructured.Unstructured
	valid := true
	for _, m := range p.manifests {
		res, objs := dryrun.Check(ctx, c.applier, m, c.cfg.Limits)
		out.checks = append(out.checks, res)
		objects = append(objects, objs)
		valid = valid && res.Valid
	}
	if !valid {
		out.code, out.msg = http.StatusUnprocessableEntity, "the dry-run failed, so nothing was proposed for approval"
		return out
	}
	for i, m := range p.manifests {
		for j, o := range objects[i] {
			b, err := yaml.Marshal(o.Object)
			if err != nil {
				out.code, out.msg = ssa.Describe(err)
				return out
			}
			if p.origin == v1alpha1.OriginPolicyPush {
				// One object that names its namespace: kept as the cloud wrote it, so that
				// the answer echoes it unchanged.
				b = []byte(m.GetYamlContent())
			}
			name := out.checks[i].Objects[j].Object
			if len(b) > maxYAML {
				out.code, out.msg = http.StatusRequestEntityTooLarge, fmt.Sprintf("%s is %d bytes as YAML; a ChangeRequest holds at most %d per object", name, len(b), maxYAML)
				return out
			}
			diff := out.checks[i].Objects[j].Diff
			if len(diff) > maxDiff {
				diff = diff[:maxDiff] + "\n… (diff truncated)\n"
			}
			names = append(names, name)
			spec.Manifests = append(spec.Manifests, v1alpha1.Manifest{ID: m.GetManifestId(), Object: name,
				YAML: string(b), DryRun: "valid", Diff: diff})
		}
	}
	if len(spec.Manifests) > maxObjects {
		out.code, out.msg = http.StatusRequestEntityTooLarge, fmt.Sprintf("%d objects in one change; a ChangeRequest holds at most %d", len(spec.Manifests), maxObjects)
		return out
	}
	spec.Target = target(names)
	switch p.origin {
	case v1alpha1.OriginApply:
		spec.RequestID = p.id
		spec.Reason = "Kestrel Cloud sent YamlApplyRequest " + p.id
	case v1alpha1.OriginPolicyPush:
		spec.PolicyID = p.id
		spec.Reason = "Kestrel Cloud recommends NetworkPolicy " + p.id
	}
	cr := &v1alpha1.ChangeRequest{
		TypeMeta:   metav1.TypeMeta{APIVersion: v1alpha1.Group + "/" + v1alpha1.Version, Kind: v1alpha1.Kind},
		ObjectMeta: metav1.ObjectMeta{Name: Name(p.origin, p.id), Namespace: c.cfg.Namespace},
		Spec:       spec,
	}
	created, err := c.create(ctx, cr)
	if err != nil {
		out.code, out.msg = ssa.Describe(err)
		out.msg = "creating the ChangeRequest: " + out.msg
		return out
	}
	out.cr = created
	return out
}

// target names what a change touches, for the printer column.
func target(names []string) string {
	short := make([]string, len(names))
	for i, n := range names {
		// "<apiVersion> <Kind> <ns>/<name>" without the apiVersion.
		_, short[i], _ = strings.Cut(n, " ")
	}
	s := strings.Join(short, ", ")
	if len(names) > 1 {
		s = fmt.Sprintf("%d objects: %s", len(names), s)
	}
	if len(s) > 256 {
		s = s[:253] + "..."
	}
	return s
}

func decode(u *unstructured.Unstructured) (*v1alpha1.ChangeRequest, error) {
	var cr v1alpha1.ChangeRequest
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &cr); err != nil {
		return nil, fmt.Errorf("reading ChangeRequest %s/%s: %w", u.GetNamespace(), u.GetName(), err)
	}
	return &cr, nil
}

// ApproveCommand is the kubectl command that approves a ChangeRequest as the user running it.
func ApproveCommand(ns, name string) string {
	return fmt.Sprintf(`kubectl -n %s patch changerequest %s --type=merge -p "{\"spec\":{\"decision\":\"Approved\",\"decidedBy\":\"$(kubectl auth whoami -o jsonpath='{.status.userInfo.username}')\"}}"`, ns, name)
}

// autoApproved reports whether an auto_approve rule covers every object of cr.
func (c *Controller) autoApproved(cr *v1alpha1.ChangeRequest) bool {
	if len(c.cfg.AutoApprove) == 0 {
		return false
	}
	if cr.Spec.Origin == v1alpha1.OriginIntegration {
		return c.operationApproved(cr)
	}
	for _, m := range cr.Spec.Manifests {
		objs, err := manifest.Decode(m.YAML, c.cfg.Limits)
		if err != nil || len(objs) != 1 {
			return false
		}
		o := objs[0]
		gk := o.GroupVersionKind().GroupKind()
		if !slices.ContainsFunc(c.cfg.AutoApprove, func(r Rule) bool {
			return (slices.Contains(r.Kinds, gk.Kind) || slices.Contains(r.Kinds, gk.String()) || slices.Contains(r.Kinds, gk.Group+"/"+gk.Kind)) &&
				(len(r.Namespaces) == 0 || slices.Contains(r.Namespaces, o.GetNamespace()))
		}) {
			return false
		}
	}
	return true
}
