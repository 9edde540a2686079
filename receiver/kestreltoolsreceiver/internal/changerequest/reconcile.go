package changerequest // import "github.com/kestrelai/otelcol-kestrel/receiver/kestreltoolsreceiver/internal/changerequest"

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"

	cloudv1 "github.com/kestrelai/otelcol-kestrel/api/cloud/v1"
	"github.com/kestrelai/otelcol-kestrel/api/kestrel/v1alpha1"
	"github.com/kestrelai/otelcol-kestrel/receiver/kestreltoolsreceiver/internal/audit"
	"github.com/kestrelai/otelcol-kestrel/receiver/kestreltoolsreceiver/internal/manifest"
	"github.com/kestrelai/otelcol-kestrel/receiver/kestreltoolsreceiver/internal/ssa"
)

// claimGrace is added to the apply timeout before a claim counts as abandoned.
const claimGrace = 30 * time.Second

// next processes one queued ChangeRequest; false once the queue is shut down.
func (c *Controller) next() bool {
	key, quit := c.queue.Get()
	if quit {
		return false
	}
	defer c.queue.Done(key)
	retry, err := c.reconcile(key)
	switch {
	case apierrors.IsConflict(err):
		// The informer's copy was older than the object; the newer one is on its way.
		c.logger.Debug("ChangeRequest changed meanwhile; retrying", zap.String("changerequest", key))
		c.queue.AddRateLimited(key)
	case err != nil:
		c.logger.Warn("Processing a ChangeRequest failed; retrying", zap.String("changerequest", key), zap.Error(err))
		c.queue.AddRateLimited(key)
	case retry > 0:
		c.queue.Forget(key)
		c.queue.AddAfter(key, retry)
	default:
		c.queue.Forget(key)
	}
	return true
}

// reconcile moves one ChangeRequest on; retry > 0 asks to look again after that long.
func (c *Controller) reconcile(key string) (retry time.Duration, err error) {
	obj, exists, err := c.informer.GetIndexer().GetByKey(key)
	if err != nil || !exists {
		return 0, err
	}
	u, ok := obj.(*unstructured.Unstructured)
	if !ok {
		return 0, fmt.Errorf("unexpected object %T", obj)
	}
	cr, err := decode(u)
	if err != nil {
		return 0, err
	}
	// Only the ChangeRequests this identity requested (the admission policy makes
	// requestedBy truthful): one created by anyone else is never applied with our rights.
	if cr.Spec.RequestedBy != c.Identity() {
		return 0, nil
	}
	ctx := c.ctx
	state := cr.Status.State
	switch {
	case state.Final():
		if cr.Status.Reported {
			return 0, nil
		}
		return 0, c.report(ctx, cr)
	case state == v1alpha1.StateApplying && c.claimed[cr.UID]:
		// This process applied it: the informer has not seen the outcome yet.
		return 0, nil
	case state == v1alpha1.StateApplying:
		// Another process claimed it. Once the claim is older than an apply can take, that
		// process stopped before recording the outcome: take the claim over (with the
		// resourceVersion read, so only one does) and finish, which is safe because
		// server-side apply of the same objects is idempotent.
		if cr.Status.ClaimedAt != nil {
			if wait := c.cfg.ApplyTimeout + claimGrace - time.Since(cr.Status.ClaimedAt.Time); wait > 0 {
				return wait, nil
			}
		}
		// The claim must still be backed by a decision (or a rule of this configuration).
		auto := c.autoApproved(cr)
		if cr.Spec.Decision != v1alpha1.Approved && !auto {
			return 0, c.finish(ctx, cr, v1alpha1.StateFailed, "claimed for applying without an approval; nothing was applied", nil)
		}
		if err := c.claim(ctx, cr, auto && cr.Spec.Decision != v1alpha1.Approved); err != nil {
			return 0, err
		}
		return 0, c.apply(ctx, cr)
	case cr.Spec.Decision == v1alpha1.Rejected:
		// The status first: a stale copy fails there (resourceVersion) before any event.
		if err := c.finish(ctx, cr, v1alpha1.StateRejected, "rejected by "+cr.Spec.DecidedBy+"; nothing was applied", nil); err != nil {
			return 0, err
		}
		c.event(cr, corev1.EventTypeNormal, "Rejected", "Rejected by "+cr.Spec.DecidedBy+"; nothing is applied")
		c.decided(ctx, cr, Rejected, cr.Spec.DecidedBy)
		return 0, nil
	case !time.Now().Before(cr.Spec.ExpiresAt.Time):
		expiry := cr.Spec.ExpiresAt.UTC().Format(time.RFC3339)
		if err := c.finish(ctx, cr, v1alpha1.StateExpired, "expired at "+expiry+" without a decision; nothing was applied", nil); err != nil {
			return 0, err
		}
		c.event(cr, corev1.EventTypeWarning, "Expired", "No decision before "+expiry+"; nothing is applied")
		c.decided(ctx, cr, Expired, "")
		return 0, nil
	case cr.Spec.Decision == v1alpha1.Approved:
		if err := c.claim(ctx, cr, false); err != nil {
			return 0, err
		}
		c.event(cr, corev1.EventTypeNormal, "Approved", "Approved by "+cr.Spec.DecidedBy+"; applying")
		c.decided(ctx, cr, audit.OK, cr.Spec.DecidedBy)
		return 0, c.apply(ctx, cr)
	case c.autoApproved(cr):
		if err := c.claim(ctx, cr, true); err != nil {
			return 0, err
		}
		c.event(cr, corev1.EventTypeNormal, "Approved", "Approved by an auto_approve rule of the operator's configuration; applying")
		c.decided(ctx, cr, audit.OK, "auto_approve")
		return 0, c.apply(ctx, cr)
	case state == "":
		cr.Status.State, cr.Status.Message = v1alpha1.StatePending, "waiting for a decision"
		return time.Until(cr.Spec.ExpiresAt.Time), c.writeStatus(ctx, cr)
	default:
		return time.Until(cr.Spec.ExpiresAt.Time), nil
	}
}

// claim moves an approved ChangeRequest to Applying. The status update carries the
// resourceVersion read, so of two operators (or two passes) only one wins and applies.
func (c *Controller) claim(ctx context.Context, cr *v1alpha1.ChangeRequest, auto bool) error {
	now := metav1.Now()
	cr.Status = v1alpha1.ChangeRequestStatus{State: v1alpha1.StateApplying, AutoApproved: auto, Message: "applying", ClaimedAt: &now}
	if err := c.writeStatus(ctx, cr); err != nil {
		return err
	}
	c.claimed[cr.UID] = true
	return nil
}

// apply applies the manifests in order and records the outcome; after the first failure
// the rest are not applied.
func (c *Controller) apply(ctx context.Context, cr *v1alpha1.ChangeRequest) error {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.ApplyTimeout)
	defer cancel()
	var results []v1alpha1.Result
	failed := ""
	for _, m := range cr.Spec.Manifests {
		r := v1alpha1.Result{ID: m.ID, Object: m.Object}
		switch objs, err := manifest.Decode(m.YAML, c.cfg.Limits); {
		case failed != "":
			r.StatusCode, r.Message = http.StatusFailedDependency, "not applied: "+failed+" failed first"
		case err != nil:
			r.StatusCode, r.Message = ssa.Describe(err)
		case len(objs) != 1:
			r.StatusCode, r.Message = http.StatusBadRequest, "a ChangeRequest manifest must hold exactly one object"
		default:
			res := c.applyOne(ctx, m, objs[0])
			r.StatusCode, r.Message = res.StatusCode, res.Message
		}
		if r.StatusCode != http.StatusOK && failed == "" {
			failed = m.Object
		}
		results = append(results, r)
	}
	if failed != "" {
		c.event(cr, corev1.EventTypeWarning, "Failed", "Applying "+failed+" failed: "+firstLine(results))
		return c.finish(ctx, cr, v1alpha1.StateFailed, "applying "+failed+" failed", results)
	}
	c.event(cr, corev1.EventTypeNormal, "Applied", "Applied "+cr.Spec.Target+" (field manager "+ssa.FieldManager+")")
	return c.finish(ctx, cr, v1alpha1.StateApplied, "applied", results)
}

func firstLine(rs []v1alpha1.Result) string {
	for _, r := range rs {
		if r.Message != "" {
			l, _, _ := strings.Cut(r.Message, "\n")
			return l
		}
	}
	return ""
}

// finish records a final state; the status change brings the ChangeRequest back through
// the queue, which reports it to the cloud.
func (c *Controller) finish(ctx context.Context, cr *v1alpha1.ChangeRequest, state v1alpha1.State, msg string, results []v1alpha1.Result) error {
	cr.Status.State, cr.Status.Message, cr.Status.Results, cr.Status.Reported = state, msg, results, false
	if state == v1alpha1.StateApplied || state == v1alpha1.StateFailed {
		now := metav1.Now()
		cr.Status.AppliedAt = &now
	}
	return c.writeStatus(context.WithoutCancel(ctx), cr)
}

func (c *Controller) writeStatus(ctx context.Context, cr *v1alpha1.ChangeRequest) error {
	u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(cr)
	if err != nil {
		return err
	}
	out, err := c.crs.Namespace(cr.Namespace).UpdateStatus(ctx, &unstructured.Unstructured{Object: u}, metav1.UpdateOptions{FieldManager: ssa.FieldManager})
	if err != nil {
		if apierrors.IsConflict(err) {
			return fmt.Errorf("ChangeRequest %s/%s changed meanwhile: %w", cr.Namespace, cr.Name, err)
		}
		return err
	}
	cr.ResourceVersion = out.GetResourceVersion()
	return nil
}

// report sends the final result to the cloud and records that it was sent.
func (c *Controller) report(ctx context.Context, cr *v1alpha1.ChangeRequest) error {
	if !c.sent[cr.UID] {
		if err := c.conn.Send(ctx, Final(cr)); err != nil {
			return fmt.Errorf("sending the result of ChangeRequest %s/%s to Kestrel Cloud: %w", cr.Namespace, cr.Name, err)
		}
		c.sent[cr.UID] = true
	}
	cr.Status.Reported = true
	return c.writeStatus(ctx, cr)
}

func (c *Controller) event(cr *v1alpha1.ChangeRequest, typ, reason, msg string) {
	u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(cr)
	if err != nil {
		return
	}
	c.recorder.Event(&unstructured.Unstructured{Object: u}, typ, reason, msg)
}

// decided audits a decision (or an expiry).
func (c *Controller) decided(ctx context.Context, cr *v1alpha1.ChangeRequest, outcome, by string) {
	tool := toolOf(cr.Spec.Origin)
	c.trail.Add(ctx, audit.Record{RequestID: cr.Spec.RequestID + cr.Spec.PolicyID, Tool: DecisionTool,
		Input: tool + " " + cr.Namespace + "/" + cr.Name + ": " + cr.Spec.Target, Identity: by, Outcome: outcome,
		Reason: "requested by " + cr.Spec.RequestedBy})
}

// Final is the message that tells the cloud how a ChangeRequest ended.
func Final(cr *v1alpha1.ChangeRequest) proto.Message {
	ref := cr.Namespace + "/" + cr.Name
	msg := ""
	switch cr.Status.State {
	case v1alpha1.StateApplied:
	case v1alpha1.StateFailed:
		msg = "ChangeRequest " + ref + " was approved but applying failed: " + firstLine(cr.Status.Results)
	default:
		msg = "ChangeRequest " + ref + " " + cr.Status.Message
	}
	if cr.Spec.Origin == v1alpha1.OriginIntegration {
		return finalIntegration(cr, msg)
	}
	if cr.Spec.Origin == v1alpha1.OriginPolicyPush {
		yamlText := ""
		if len(cr.Spec.Manifests) > 0 {
			yamlText = cr.Spec.Manifests[0].YAML
		}
		return &cloudv1.NetworkPoliciesWithErrors{Policies: []*cloudv1.NetworkPolicyWithError{{
			NetworkPolicy: yamlText, PolicyId: cr.Spec.PolicyID, ErrorMessage: msg}}}
	}
	resp := &cloudv1.YamlApplyResponse{RequestId: cr.Spec.RequestID, ChangeRequest: ref}
	byID := map[string]*cloudv1.YamlApplyResult{}
	for i, m := range cr.Spec.Manifests {
		r := byID[m.ID]
		if r == nil {
			r = &cloudv1.YamlApplyResult{ManifestId: m.ID, Success: true, StatusCode: http.StatusOK}
			byID[m.ID] = r
			resp.Results = append(resp.Results, r)
		}
		var code int32
		var e string
		switch cr.Status.State {
		case v1alpha1.StateRejected:
			code, e = http.StatusForbidden, msg
		case v1alpha1.StateExpired:
			code, e = http.StatusGone, msg
		default:
			if i < len(cr.Status.Results) {
				code, e = cr.Status.Results[i].StatusCode, cr.Status.Results[i].Message
			}
		}
		if code != http.StatusOK {
			if r.Success {
				r.Success, r.StatusCode, r.ErrorMessage = false, code, e
			}
			continue
		}
		if r.AppliedResourceInfo != "" {
			r.AppliedResourceInfo += "; "
		}
		r.AppliedResourceInfo += "applied " + m.Object
	}
	if cr.Status.State != v1alpha1.StateApplied {
		resp.GlobalErrorMessage = msg
	}
	return resp
}

// CheckApply validates a YamlApplyRequest before anything is asked of the cluster: a
// non-zero code and a message say why it is refused.
func CheckApply(req *cloudv1.YamlApplyRequest, l manifest.Limits) (int32, string) {
	switch {
	case len(req.GetYamlManifests()) == 0:
		return http.StatusBadRequest, "no yaml_manifests in the request"
	case req.GetRequestId() == "":
		return http.StatusBadRequest, "request_id is empty: the final result could not be matched to the request"
	case len(req.GetRequestId()) > 256:
		return http.StatusBadRequest, "request_id is longer than 256 bytes"
	case len(req.GetYamlManifests()) > maxObjects:
		return http.StatusRequestEntityTooLarge, fmt.Sprintf("%d manifests in one request; a ChangeRequest holds at most %d", len(req.GetYamlManifests()), maxObjects)
	}
	for _, m := range req.GetYamlManifests() {
		if len(m.GetManifestId()) > 256 {
			return http.StatusBadRequest, "a manifest_id is longer than 256 bytes"
		}
		if len(m.GetYamlContent()) > l.MaxBytes {
			return http.StatusRequestEntityTooLarge, fmt.Sprintf("manifest %s is %d bytes; at most %d are accepted", m.GetManifestId(), len(m.GetYamlContent()), l.MaxBytes)
		}
	}
	return 0, ""
}

// CheckPush validates a pushed policy: one networking.k8s.io/v1 NetworkPolicy that names
// its namespace, and a policy_id to answer with.
func CheckPush(push *cloudv1.NetworkPolicyWithError, l manifest.Limits) (int32, string) {
	if push.GetPolicyId() == "" {
		return http.StatusBadRequest, "policy_id is empty: the result could not be matched to the push"
	}
	if len(push.GetPolicyId()) > 256 {
		return http.StatusBadRequest, "policy_id is longer than 256 bytes"
	}
	objs, err := manifest.Decode(push.GetNetworkPolicy(), l)
	if err != nil {
		return ssa.Describe(err)
	}
	if len(objs) != 1 || objs[0].GetAPIVersion() != "networking.k8s.io/v1" || objs[0].GetKind() != "NetworkPolicy" {
		return http.StatusBadRequest, "a pushed policy must be exactly one networking.k8s.io/v1 NetworkPolicy"
	}
	if objs[0].GetNamespace() == "" {
		return http.StatusBadRequest, "a pushed NetworkPolicy must name its metadata.namespace"
	}
	return 0, ""
}

// ProposeApply answers a YamlApplyRequest: pending with the ChangeRequest to approve, or
// at once when nothing can be proposed.
func (c *Controller) ProposeApply(ctx context.Context, req *cloudv1.YamlApplyRequest) *cloudv1.YamlApplyResponse {
	start := time.Now()
	resp := &cloudv1.YamlApplyResponse{RequestId: req.GetRequestId()}
	if code, msg := CheckApply(req, c.cfg.Limits); code != 0 {
		resp.GlobalErrorMessage = msg
		c.audit(ctx, ApplyTool, req.GetRequestId(), "", audit.Refused, msg, int(code), start)
		return resp
	}
	p := c.propose(ctx, proposal{origin: v1alpha1.OriginApply, id: req.GetRequestId(), manifests: req.GetYamlManifests(),
		timeoutSeconds: req.GetTimeoutSeconds()})
	if p.cr == nil {
		resp.GlobalErrorMessage = p.msg
		for i, m := range req.GetYamlManifests() {
			r := &cloudv1.YamlApplyResult{ManifestId: m.GetManifestId(), StatusCode: p.code, ErrorMessage: p.msg}
			if i < len(p.checks) && !p.checks[i].Valid {
				r.StatusCode, r.ErrorMessage = p.checks[i].StatusCode, "dry-run: "+p.checks[i].ErrorMessage
			} else if i < len(p.checks) {
				r.StatusCode, r.ErrorMessage = http.StatusFailedDependency, "valid, but not proposed: another manifest of the request failed its dry-run"
			}
			resp.Results = append(resp.Results, r)
		}
		c.audit(ctx, ApplyTool, req.GetRequestId(), "", outcomeOf(p.code), p.msg, int(p.code), start)
		return resp
	}
	cr := p.cr
	if cr.Status.State.Final() {
		// Asked again after the end: the final result once more.
		return Final(cr).(*cloudv1.YamlApplyResponse)
	}
	ref := cr.Namespace + "/" + cr.Name
	resp.Pending, resp.ChangeRequest = true, ref
	note := "pending approval in the cluster: ChangeRequest " + ref + " (" + cr.Spec.Target + ") expires at " +
		cr.Spec.ExpiresAt.UTC().Format(time.RFC3339) + "; approve with: " + ApproveCommand(cr.Namespace, cr.Name)
	if c.autoApproved(cr) {
		note = "auto-approved by the operator's configuration; applying as ChangeRequest " + ref
	}
	seen := map[string]bool{}
	for _, m := range req.GetYamlManifests() {
		if seen[m.GetManifestId()] {
			continue
		}
		seen[m.GetManifestId()] = true
		resp.Results = append(resp.Results, &cloudv1.YamlApplyResult{ManifestId: m.GetManifestId(), StatusCode: http.StatusAccepted, ErrorMessage: note})
	}
	c.audit(ctx, ApplyTool, req.GetRequestId(), cr.Spec.Target, Pending, "ChangeRequest "+ref, http.StatusAccepted, start)
	return resp
}

// ProposePolicy handles a pushed NetworkPolicy: nil (the answer comes once decided), or a
// nack when nothing can be proposed.
func (c *Controller) ProposePolicy(ctx context.Context, push *cloudv1.NetworkPolicyWithError) proto.Message {
	start := time.Now()
	nack := func(code int32, msg string) proto.Message {
		c.audit(ctx, PolicyTool, push.GetPolicyId(), "", outcomeOf(code), msg, int(code), start)
		return &cloudv1.NetworkPoliciesWithErrors{Policies: []*cloudv1.NetworkPolicyWithError{{
			NetworkPolicy: push.GetNetworkPolicy(), PolicyId: push.GetPolicyId(), ErrorMessage: msg}}}
	}
	if code, msg := CheckPush(push, c.cfg.Limits); code != 0 {
		return nack(code, msg)
	}
	p := c.propose(ctx, proposal{origin: v1alpha1.OriginPolicyPush, id: push.GetPolicyId(),
		manifests: []*cloudv1.YamlManifest{{ManifestId: push.GetPolicyId(), YamlContent: push.GetNetworkPolicy()}}})
	if p.cr == nil {
		msg := p.msg
		if len(p.checks) == 1 && !p.checks[0].Valid {
			msg = "dry-run: " + p.checks[0].ErrorMessage
		}
		return nack(p.code, msg)
	}
	if p.cr.Status.State.Final() && p.cr.Status.Reported {
		return Final(p.cr)
	}
	c.audit(ctx, PolicyTool, push.GetPolicyId(), p.cr.Spec.Target, Pending, "ChangeRequest "+p.cr.Namespace+"/"+p.cr.Name, http.StatusAccepted, start)
	return nil
}

func (c *Controller) audit(ctx context.Context, tool, id, input, outcome, reason string, code int, start time.Time) {
	c.trail.Add(ctx, audit.Record{RequestID: id, Tool: tool, Input: input, Identity: c.Identity(), Outcome: outcome,
		Reason: reason, StatusCode: code, Duration: time.Since(start)})
}

func outcomeOf(code int32) string {
	switch code {
	case http.StatusBadRequest, http.StatusForbidden, http.StatusRequestEntityTooLarge:
		return audit.Refused
	case http.StatusGatewayTimeout:
		return audit.Timeout
	default:
		return audit.Error
	}
}
