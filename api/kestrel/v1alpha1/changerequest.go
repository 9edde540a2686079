// Package v1alpha1 is the kestrel.ai/v1alpha1 API group: the ChangeRequest, through which
// every change Kestrel Cloud proposes waits for a person's decision in the cluster.
//
// config/crd/kestrel.ai_changerequests.yaml is generated from these types (`make crds`);
// the ValidatingAdmissionPolicy next to it makes decisions unforgeable.
//
// +kubebuilder:object:generate=false
// +groupName=kestrel.ai
package v1alpha1 // import "github.com/kestrelai/otelcol-kestrel/api/kestrel/v1alpha1"

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// Group, version and resource of the ChangeRequest.
const (
	Group    = "kestrel.ai"
	Version  = "v1alpha1"
	Kind     = "ChangeRequest"
	Resource = "changerequests"
	// ApproveVerb is the RBAC verb a person needs on changerequests to decide one; the
	// ValidatingAdmissionPolicy checks it. No built-in role grants it.
	ApproveVerb = "approve"
)

// GroupVersionResource is the ChangeRequest's resource.
var GroupVersionResource = schema.GroupVersionResource{Group: Group, Version: Version, Resource: Resource}

// Decision is a person's verdict on a ChangeRequest.
// +kubebuilder:validation:Enum=Approved;Rejected
type Decision string

const (
	Approved Decision = "Approved"
	Rejected Decision = "Rejected"
)

// State is where a ChangeRequest is in its life.
// +kubebuilder:validation:Enum=Pending;Applying;Applied;Failed;Rejected;Expired
type State string

const (
	StatePending  State = "Pending"
	StateApplying State = "Applying"
	StateApplied  State = "Applied"
	StateFailed   State = "Failed"
	StateRejected State = "Rejected"
	StateExpired  State = "Expired"
)

// Final reports whether nothing more happens to a ChangeRequest in this state.
func (s State) Final() bool {
	return s == StateApplied || s == StateFailed || s == StateRejected || s == StateExpired
}

// Origin is what the cloud sent.
// +kubebuilder:validation:Enum=YamlApplyRequest;NetworkPolicyPush;DatadogQueryRequest
type Origin string

const (
	OriginApply      Origin = "YamlApplyRequest"
	OriginPolicyPush Origin = "NetworkPolicyPush"
	// OriginIntegration is an integration's write (Argo CD, Argo Rollouts, Flux, Karpenter)
	// asked for in a DatadogQueryRequest.
	OriginIntegration Origin = "DatadogQueryRequest"
)

// Action is how a manifest changes its object.
// +kubebuilder:validation:Enum=Apply;MergePatch;Delete;DatadogRequest
type Action string

const (
	// ActionApply server-side applies the manifest (the default).
	ActionApply Action = "Apply"
	// ActionMergePatch sends the manifest as a JSON merge patch: exactly the fields it
	// holds change (null removes one).
	ActionMergePatch Action = "MergePatch"
	// ActionDelete deletes the object the manifest names.
	ActionDelete Action = "Delete"
	// ActionDatadog sends the Datadog API request the manifest describes (method, path,
	// body); nothing in the cluster changes.
	ActionDatadog Action = "DatadogRequest"
)

// ChangeRequest holds manifests Kestrel Cloud wants applied. The operator creates it and
// applies the manifests only after a person with the "approve" right on changerequests set
// spec.decision to Approved (or when an auto_approve rule of the administrator covers them).
//
// +kubebuilder:resource:scope=Namespaced,shortName=chr,categories=kestrel
// +kubebuilder:subresource:status
// +kubebuilder:printcolumn:name="Decision",type=string,JSONPath=`.spec.decision`
// +kubebuilder:printcolumn:name="State",type=string,JSONPath=`.status.state`
// +kubebuilder:printcolumn:name="Target",type=string,JSONPath=`.spec.target`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:printcolumn:name="Expires",type=string,JSONPath=`.spec.expiresAt`
// +kubebuilder:printcolumn:name="Decided-By",type=string,JSONPath=`.spec.decidedBy`,priority=1
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.spec.reason`,priority=1
type ChangeRequest struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +required
	Spec ChangeRequestSpec `json:"spec"`
	// +optional
	Status ChangeRequestStatus `json:"status,omitempty"`
}

// ChangeRequestSpec is the proposed change and the decision on it. Everything but the
// decision is fixed at creation.
//
// +kubebuilder:validation:XValidation:rule="self.origin != 'YamlApplyRequest' || size(self.requestID) > 0",message="a YamlApplyRequest change names its requestID"
// +kubebuilder:validation:XValidation:rule="self.origin != 'NetworkPolicyPush' || size(self.policyID) > 0",message="a pushed NetworkPolicy names its policyID"
// +kubebuilder:validation:XValidation:rule="self.origin != 'DatadogQueryRequest' || (size(self.requestID) > 0 && has(self.operation))",message="an integration change names its requestID and operation"
// +kubebuilder:validation:XValidation:rule="has(self.decision) == has(self.decidedBy)",message="decision and decidedBy are set together"
// +kubebuilder:validation:XValidation:rule="!has(oldSelf.decision) || (has(self.decision) && self.decision == oldSelf.decision && self.decidedBy == oldSelf.decidedBy)",message="a decision cannot be changed or withdrawn"
type ChangeRequestSpec struct {
	// Origin is the cloud message the change came in.
	// +required
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="origin is immutable"
	Origin Origin `json:"origin"`
	// RequestID is the YamlApplyRequest's request_id ("" for a pushed policy).
	// +required
	// +kubebuilder:validation:MaxLength=256
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="requestID is immutable"
	RequestID string `json:"requestID"`
	// PolicyID is the pushed NetworkPolicy's policy_id ("" for a YamlApplyRequest).
	// +required
	// +kubebuilder:validation:MaxLength=256
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="policyID is immutable"
	PolicyID string `json:"policyID"`
	// Operation is the integration operation of a DatadogQueryRequest change (its
	// query_type, e.g. ROLLOUTS_PROMOTE).
	// +optional
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="operation is immutable"
	Operation string `json:"operation,omitempty"`
	// Reason is why the cloud proposes the change, as it said ("" if it said nothing).
	// +required
	// +kubebuilder:validation:MaxLength=4096
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="reason is immutable"
	Reason string `json:"reason"`
	// Target names what the change touches, e.g. "NetworkPolicy shop/allow-web".
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=256
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="target is immutable"
	Target string `json:"target"`
	// RequestedBy is the Kubernetes user that created the ChangeRequest (the operator); the
	// admission policy checks it against the creator and refuses a decision by it.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=512
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="requestedBy is immutable"
	RequestedBy string `json:"requestedBy"`
	// Manifests are the objects to apply, in order.
	// +required
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=32
	// +listType=atomic
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="manifests are immutable"
	Manifests []Manifest `json:"manifests"`
	// ExpiresAt is when a ChangeRequest that is still pending expires; it is not applied after.
	// +required
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="expiresAt is immutable"
	ExpiresAt metav1.Time `json:"expiresAt"`

	// Decision is set by a person: Approved or Rejected. It cannot be changed once set.
	// +optional
	Decision Decision `json:"decision,omitempty"`
	// DecidedBy is the user who set the decision; the admission policy requires it to be the
	// user making the request, so it cannot be faked.
	// +optional
	// +kubebuilder:validation:MaxLength=512
	DecidedBy string `json:"decidedBy,omitempty"`
}

// Manifest is one object of the change, as the cloud sent it, with its dry-run result.
type Manifest struct {
	// ID is the manifest_id the cloud gave it.
	// +optional
	// +kubebuilder:validation:MaxLength=256
	ID string `json:"id,omitempty"`
	// Object names the object: "<apiVersion> <Kind> <namespace>/<name>".
	// +required
	// +kubebuilder:validation:MaxLength=512
	Object string `json:"object"`
	// YAML is the manifest.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=131072
	YAML string `json:"yaml"`
	// Action is how the object changes: Apply (server-side apply, the default), MergePatch
	// (exactly the fields of yaml), Delete, or DatadogRequest (a call to the Datadog API).
	// +optional
	Action Action `json:"action,omitempty"`
	// Subresource is where a MergePatch goes ("status"); empty for the object itself.
	// +optional
	// +kubebuilder:validation:Enum=status
	Subresource string `json:"subresource,omitempty"`
	// DryRun is the server-side dry-run result at creation: "valid", or the API's error.
	// +optional
	// +kubebuilder:validation:MaxLength=8192
	DryRun string `json:"dryRun,omitempty"`
	// Diff is the change the dry-run showed, from the live object to the applied result.
	// +optional
	// +kubebuilder:validation:MaxLength=131072
	Diff string `json:"diff,omitempty"`
}

// ChangeRequestStatus is written by the operator only.
type ChangeRequestStatus struct {
	// State is Pending, Applying, Applied, Failed, Rejected or Expired.
	// +optional
	State State `json:"state,omitempty"`
	// AutoApproved is true when an auto_approve rule applied the change without a decision.
	// +optional
	AutoApproved bool `json:"autoApproved,omitempty"`
	// Message says what happened, in words.
	// +optional
	// +kubebuilder:validation:MaxLength=32768
	Message string `json:"message,omitempty"`
	// Results are the apply results, one per manifest.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=32
	Results []Result `json:"results,omitempty"`
	// ClaimedAt is when an operator began applying; another one takes over a claim that
	// stays unfinished for longer than its apply timeout.
	// +optional
	ClaimedAt *metav1.Time `json:"claimedAt,omitempty"`
	// AppliedAt is when the apply finished.
	// +optional
	AppliedAt *metav1.Time `json:"appliedAt,omitempty"`
	// Reported is true once Kestrel Cloud has been sent the final result.
	// +optional
	Reported bool `json:"reported,omitempty"`
}

// Result is the apply result of one manifest.
type Result struct {
	// ID is the manifest's ID.
	// +optional
	ID string `json:"id,omitempty"`
	// Object names the object.
	// +optional
	Object string `json:"object,omitempty"`
	// StatusCode is 200 on success, else the API's status code (409 for a field conflict).
	// +optional
	StatusCode int32 `json:"statusCode,omitempty"`
	// Message is the API's error, empty on success.
	// +optional
	// +kubebuilder:validation:MaxLength=8192
	Message string `json:"message,omitempty"`
}
