package changerequest

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/yaml"

	cloudv1 "github.com/kestrelai/otelcol-kestrel/api/cloud/v1"
	"github.com/kestrelai/otelcol-kestrel/api/kestrel/v1alpha1"
	"github.com/kestrelai/otelcol-kestrel/receiver/kestreltoolsreceiver/internal/manifest"
	"github.com/kestrelai/otelcol-kestrel/receiver/kestreltoolsreceiver/internal/ssa"
)

// IntegrationTool names integration writes in the audit trail and the self-metrics.
const IntegrationTool = "integration_write"

// Change is one object an integration write changes.
type Change struct {
	// Object names the object (apiVersion, kind, metadata.name, metadata.namespace) and,
	// for a MergePatch, holds exactly the fields to set.
	Object *unstructured.Unstructured
	// Action is ActionMergePatch, ActionApply or ActionDelete.
	Action v1alpha1.Action
	// Subresource is where a MergePatch goes ("status" or "").
	Subresource string
}

// Integration is an integration write on its way to a ChangeRequest.
type Integration struct {
	RequestID string
	// Operation is the query_type's name, e.g. ROLLOUTS_PROMOTE.
	Operation string
	Changes   []Change
}

// ProposeIntegration answers an integration write: 202 with the ChangeRequest to approve
// (the final answer follows once decided), or at once when nothing can be proposed.
func (c *Controller) ProposeIntegration(ctx context.Context, in Integration) *cloudv1.DatadogQueryResponse {
	start := time.Now()
	resp := &cloudv1.DatadogQueryResponse{RequestId: in.RequestID}
	fail := func(code int32, msg string) *cloudv1.DatadogQueryResponse {
		resp.StatusCode, resp.ErrorMessage = code, msg
		c.audit(ctx, IntegrationTool, in.RequestID, in.Operation, outcomeOf(code), msg, int(code), start)
		return resp
	}
	switch {
	case in.RequestID == "":
		return fail(http.StatusBadRequest, "request_id is empty: the final result could not be matched to the request")
	case len(in.RequestID) > 256:
		return fail(http.StatusBadRequest, "request_id is longer than 256 bytes")
	case len(in.Changes) == 0 || len(in.Changes) > maxObjects:
		return fail(http.StatusBadRequest, fmt.Sprintf("an integration write changes 1 to %d objects, not %d", maxObjects, len(in.Changes)))
	}
	if err := c.ensureRunning(ctx); err != nil {
		return fail(http.StatusForbidden, NotEnabled+": "+err.Error())
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.DryRunTimeout)
	defer cancel()
	spec := v1alpha1.ChangeRequestSpec{Origin: v1alpha1.OriginIntegration, RequestID: in.RequestID, Operation: in.Operation,
		RequestedBy: c.Identity(), Reason: "Kestrel Cloud sent DatadogQueryRequest " + in.RequestID + " (" + in.Operation + ")",
		ExpiresAt: metav1.NewTime(time.Now().Add(c.cfg.Expiry).Truncate(time.Second))}
	var names []string
	for _, ch := range in.Changes {
		obj := ch.Object.DeepCopy()
		var res ssa.Result
		switch ch.Action {
		case v1alpha1.ActionMergePatch:
			res = c.applier.MergePatch(ctx, obj, ch.Subresource, true)
		case v1alpha1.ActionDelete:
			res = c.applier.Delete(ctx, obj, true)
		case v1alpha1.ActionApply:
			res = c.applier.DryRun(ctx, obj, "")
		case v1alpha1.ActionDatadog:
			// Nothing to dry-run: the ChangeRequest shows the request as it will be sent.
			b, _ := yaml.Marshal(obj.Object)
			res = ssa.Result{Object: "Datadog " + obj.GetName(), StatusCode: http.StatusOK, Diff: string(b)}
		default:
			return fail(http.StatusInternalServerError, fmt.Sprintf("integration change with action %q", ch.Action))
		}
		if !res.OK() {
			return fail(res.StatusCode, "dry-run: "+res.Message+"; nothing was proposed for approval")
		}
		b, err := yaml.Marshal(ch.Object.Object)
		if err != nil {
			return fail(ssa.Describe(err))
		}
		if len(b) > maxYAML {
			return fail(http.StatusRequestEntityTooLarge, fmt.Sprintf("%s is %d bytes as YAML; a ChangeRequest holds at most %d per object", res.Object, len(b), maxYAML))
		}
		diff := res.Diff
		if len(diff) > maxDiff {
			diff = diff[:maxDiff] + "\n… (diff truncated)\n"
		}
		names = append(names, res.Object)
		spec.Manifests = append(spec.Manifests, v1alpha1.Manifest{ID: in.Operation, Object: res.Object, YAML: string(b),
			Action: ch.Action, Subresource: ch.Subresource, DryRun: "valid", Diff: diff})
	}
	spec.Target = target(names)
	cr, err := c.create(ctx, &v1alpha1.ChangeRequest{
		TypeMeta:   metav1.TypeMeta{APIVersion: v1alpha1.Group + "/" + v1alpha1.Version, Kind: v1alpha1.Kind},
		ObjectMeta: metav1.ObjectMeta{Name: Name(v1alpha1.OriginIntegration, in.RequestID), Namespace: c.cfg.Namespace},
		Spec:       spec,
	})
	if err != nil {
		code, msg := ssa.Describe(err)
		return fail(code, "creating the ChangeRequest: "+msg)
	}
	if cr.Status.State.Final() {
		return Final(cr).(*cloudv1.DatadogQueryResponse)
	}
	ref := cr.Namespace + "/" + cr.Name
	resp.StatusCode, resp.Pending, resp.ChangeRequest = http.StatusAccepted, true, ref
	resp.ErrorMessage = "pending approval in the cluster: ChangeRequest " + ref + " (" + cr.Spec.Target + ") expires at " +
		cr.Spec.ExpiresAt.UTC().Format(time.RFC3339) + "; approve with: " + ApproveCommand(cr.Namespace, cr.Name)
	if c.autoApproved(cr) {
		resp.ErrorMessage = "auto-approved by the operator's configuration; applying as ChangeRequest " + ref
	}
	resp.ResponseData = integrationData(cr, true)
	c.audit(ctx, IntegrationTool, in.RequestID, in.Operation+" "+cr.Spec.Target, Pending, "ChangeRequest "+ref, http.StatusAccepted, start)
	return resp
}

// create creates cr, or returns the one that exists for the same request.
func (c *Controller) create(ctx context.Context, cr *v1alpha1.ChangeRequest) (*v1alpha1.ChangeRequest, error) {
	u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(cr)
	if err != nil {
		return nil, err
	}
	created, err := c.crs.Namespace(cr.Namespace).Create(ctx, &unstructured.Unstructured{Object: u}, metav1.CreateOptions{FieldManager: ssa.FieldManager})
	if apierrors.IsAlreadyExists(err) {
		// The cloud sent the same request again: it gets the same ChangeRequest.
		created, err = c.crs.Namespace(cr.Namespace).Get(ctx, cr.Name, metav1.GetOptions{})
	}
	if err != nil {
		return nil, err
	}
	return decode(created)
}

// IntegrationData is response_data of an integration write's answers.
type IntegrationData struct {
	Pending       bool                `json:"pending"`
	ChangeRequest string              `json:"change_request"`
	Operation     string              `json:"operation"`
	State         string              `json:"state,omitempty"`
	Objects       []string            `json:"objects"`
	ExpiresAt     string              `json:"expires_at,omitempty"`
	DecidedBy     string              `json:"decided_by,omitempty"`
	Results       []IntegrationResult `json:"results,omitempty"`
}

// IntegrationResult is the outcome for one object (for a Datadog request, Datadog's status
// and answer).
type IntegrationResult struct {
	Object     string `json:"object"`
	StatusCode int32  `json:"status_code"`
	Message    string `json:"message,omitempty"`
}

// External sends a request outside the cluster (a Datadog call) once approved; the
// result's message carries the answer.
type External func(ctx context.Context, obj *unstructured.Unstructured) ssa.Result

// SetExternal sets how DatadogRequest manifests are sent.
func (c *Controller) SetExternal(fn External) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.external = fn
}

func integrationData(cr *v1alpha1.ChangeRequest, pending bool) string {
	d := IntegrationData{Pending: pending, ChangeRequest: cr.Namespace + "/" + cr.Name, Operation: cr.Spec.Operation,
		State: string(cr.Status.State), DecidedBy: cr.Spec.DecidedBy}
	if pending {
		d.ExpiresAt = cr.Spec.ExpiresAt.UTC().Format(time.RFC3339)
	}
	for _, m := range cr.Spec.Manifests {
		d.Objects = append(d.Objects, m.Object)
	}
	for _, r := range cr.Status.Results {
		d.Results = append(d.Results, IntegrationResult{Object: r.Object, StatusCode: r.StatusCode, Message: r.Message})
	}
	b, _ := json.Marshal(d)
	return string(b)
}

// finalIntegration is the final answer to an integration write.
func finalIntegration(cr *v1alpha1.ChangeRequest, msg string) *cloudv1.DatadogQueryResponse {
	resp := &cloudv1.DatadogQueryResponse{RequestId: cr.Spec.RequestID, ResponseData: integrationData(cr, false),
		ChangeRequest: cr.Namespace + "/" + cr.Name}
	if len(cr.Spec.Manifests) == 1 && cr.Spec.Manifests[0].Action == v1alpha1.ActionDatadog && len(cr.Status.Results) == 1 {
		// Datadog's answer as it gave it (e.g. the monitor it created).
		resp.ResponseData = cr.Status.Results[0].Message
	}
	switch cr.Status.State {
	case v1alpha1.StateApplied:
		resp.Success, resp.StatusCode = true, http.StatusOK
	case v1alpha1.StateRejected:
		resp.StatusCode, resp.ErrorMessage = http.StatusForbidden, msg
	case v1alpha1.StateExpired:
		resp.StatusCode, resp.ErrorMessage = http.StatusGone, msg
	default:
		resp.StatusCode, resp.ErrorMessage = http.StatusInternalServerError, msg
		for _, r := range cr.Status.Results {
			if r.StatusCode != http.StatusOK {
				resp.StatusCode = r.StatusCode
				break
			}
		}
	}
	return resp
}

// applyOne changes the object of one manifest as its action says.
func (c *Controller) applyOne(ctx context.Context, m v1alpha1.Manifest, obj *unstructured.Unstructured) ssa.Result {
	switch m.Action {
	case v1alpha1.ActionMergePatch:
		return c.applier.MergePatch(ctx, obj, m.Subresource, false)
	case v1alpha1.ActionDelete:
		return c.applier.Delete(ctx, obj, false)
	case v1alpha1.ActionDatadog:
		c.mu.Lock()
		send := c.external
		c.mu.Unlock()
		if send == nil {
			return ssa.Result{Object: m.Object, StatusCode: http.StatusServiceUnavailable, Message: "Datadog is not enabled in this collector"}
		}
		return send(ctx, obj)
	default:
		return c.applier.Apply(ctx, obj, "")
	}
}

// operationApproved reports whether a rule lists the operation of an integration change
// (and, when it lists namespaces, every object is in one of them).
func (c *Controller) operationApproved(cr *v1alpha1.ChangeRequest) bool {
	return slices.ContainsFunc(c.cfg.AutoApprove, func(r Rule) bool {
		if !slices.Contains(r.Operations, cr.Spec.Operation) {
			return false
		}
		for _, m := range cr.Spec.Manifests {
			objs, err := manifest.Decode(m.YAML, c.cfg.Limits)
			if err != nil || len(objs) != 1 || (len(r.Namespaces) > 0 && !slices.Contains(r.Namespaces, objs[0].GetNamespace())) {
				return false
			}
		}
		return true
	})
}

// toolOf is the audit tool of a ChangeRequest's origin.
func toolOf(o v1alpha1.Origin) string {
	switch o {
	case v1alpha1.OriginPolicyPush:
		return PolicyTool
	case v1alpha1.OriginIntegration:
		return IntegrationTool
	}
	return ApplyTool
}
