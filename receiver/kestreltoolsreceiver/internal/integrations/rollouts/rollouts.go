// Package rollouts reads Argo Rollouts (argoproj.io/v1alpha1 Rollout) for Kestrel Cloud:
// the status of one Rollout and the list, as JSON summaries.
package rollouts // import "github.com/kestrelai/otelcol-kestrel/receiver/kestreltoolsreceiver/internal/integrations/rollouts"

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	cloudv1 "github.com/kestrelai/otelcol-kestrel/api/cloud/v1"
	"github.com/kestrelai/otelcol-kestrel/receiver/kestreltoolsreceiver/internal/integrations/crd"
)

// Name is the integration's name in configuration, messages and the audit.
const Name = "rollouts"

// Kind is the Rollout resource.
var Kind = crd.Kind{Group: "argoproj.io", Resource: "rollouts", Kind: "Rollout", Versions: []string{"v1alpha1"}}

// Body is json_body for the Rollouts types.
type Body struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	Full      bool   `json:"full"`
	Revision  int64  `json:"revision"`
}

// Target is the Rollout a request names: json_body's namespace and name win over the
// filter ("ns/name" or "name").
func Target(req *cloudv1.DatadogQueryRequest) (crd.Ref, Body, error) {
	var b Body
	if err := crd.DecodeBody(req.GetJsonBody(), &b); err != nil {
		return crd.Ref{}, b, err
	}
	if b.Name != "" {
		r := crd.Ref{Namespace: b.Namespace, Name: b.Name}
		return r, b, r.Check()
	}
	r, err := crd.ParseRef(req.GetFilter())
	if err == nil && r.Namespace == "" {
		r.Namespace = b.Namespace
	}
	if err == nil {
		err = r.Check()
	}
	return r, b, err
}

// Integration serves the Rollouts reads.
type Integration struct{}

func (Integration) Name() string { return Name }

// Available checks that the Rollout CRD is served.
func (Integration) Available(ctx context.Context, c crd.Clients) error {
	_, err := crd.Resolve(ctx, c.Discovery, Kind)
	return err
}

// Serve answers a read: 200 and its JSON.
func (Integration) Serve(ctx context.Context, c crd.Clients, req *cloudv1.DatadogQueryRequest) (int, []byte, error) {
	b, err := Integration{}.read(ctx, c, req)
	return http.StatusOK, b, err
}

// read answers ROLLOUTS_GET_STATUS and ROLLOUTS_LIST.
func (Integration) read(ctx context.Context, c crd.Clients, req *cloudv1.DatadogQueryRequest) ([]byte, error) {
	gvr, err := crd.Resolve(ctx, c.Discovery, Kind)
	if err != nil {
		return nil, err
	}
	switch req.GetQueryType() {
	case cloudv1.DatadogQueryType_ROLLOUTS_GET_STATUS:
		ref, _, err := Target(req)
		if err != nil {
			return nil, err
		}
		u, err := crd.Get(ctx, c.Dynamic, gvr, Kind.Kind, ref)
		if err != nil {
			return nil, err
		}
		return json.Marshal(Summarize(u))
	case cloudv1.DatadogQueryType_ROLLOUTS_LIST:
		var b Body
		if err := crd.DecodeBody(req.GetJsonBody(), &b); err != nil {
			return nil, err
		}
		ns := b.Namespace
		if ns == "" {
			ns = req.GetFilter()
		}
		if err := crd.CheckNamespace(ns); err != nil {
			return nil, err
		}
		items, err := crd.List(ctx, c.Dynamic, gvr, ns, int(req.GetMaxResults()))
		if err != nil {
			return nil, err
		}
		out := List{Rollouts: []Summary{}}
		for i := range items {
			out.Rollouts = append(out.Rollouts, Summarize(&items[i]))
		}
		out.Count = len(out.Rollouts)
		return json.Marshal(out)
	}
	return nil, crd.Errorf(http.StatusBadRequest, "%s is not a Rollouts read", req.GetQueryType())
}

// List is the answer to ROLLOUTS_LIST.
type List struct {
	Rollouts []Summary `json:"rollouts"`
	Count    int       `json:"count"`
}

// Summary is one Rollout as the cloud reads it.
type Summary struct {
	Name              string          `json:"name"`
	Namespace         string          `json:"namespace"`
	Phase             string          `json:"phase"`
	Message           string          `json:"message,omitempty"`
	Strategy          string          `json:"strategy"`
	Paused            bool            `json:"paused"`
	PauseReasons      []string        `json:"pause_reasons,omitempty"`
	Aborted           bool            `json:"aborted"`
	CurrentStepIndex  *int64          `json:"current_step_index,omitempty"`
	TotalSteps        int             `json:"total_steps"`
	Replicas          int64           `json:"replicas"`
	CurrentReplicas   int64           `json:"current_replicas"`
	UpdatedReplicas   int64           `json:"updated_replicas"`
	ReadyReplicas     int64           `json:"ready_replicas"`
	AvailableReplicas int64           `json:"available_replicas"`
	StableRS          string          `json:"stable_rs,omitempty"`
	CurrentPodHash    string          `json:"current_pod_hash,omitempty"`
	Revision          string          `json:"revision,omitempty"`
	Images            []string        `json:"images"`
	RestartAt         string          `json:"restart_at,omitempty"`
	Conditions        []crd.Condition `json:"conditions,omitempty"`
	CreatedAt         string          `json:"created_at"`
}

// Summarize builds the summary of one Rollout.
func Summarize(u *unstructured.Unstructured) Summary {
	o := u.Object
	s := Summary{Name: u.GetName(), Namespace: u.GetNamespace(), Phase: crd.Str(o, "status", "phase"),
		Message: crd.Str(o, "status", "message"), Paused: crd.Bool(o, "spec", "paused"), Aborted: crd.Bool(o, "status", "abort"),
		Replicas: 1, CurrentReplicas: crd.Int(o, "status", "replicas"), UpdatedReplicas: crd.Int(o, "status", "updatedReplicas"),
		ReadyReplicas: crd.Int(o, "status", "readyReplicas"), AvailableReplicas: crd.Int(o, "status", "availableReplicas"),
		StableRS: crd.Str(o, "status", "stableRS"), CurrentPodHash: crd.Str(o, "status", "currentPodHash"),
		Revision: u.GetAnnotations()["rollout.argoproj.io/revision"], RestartAt: crd.Str(o, "spec", "restartAt"),
		Conditions: crd.Conditions(u), CreatedAt: u.GetCreationTimestamp().UTC().Format("2006-01-02T15:04:05Z"), Images: []string{}}
	if _, ok, _ := unstructured.NestedFieldNoCopy(o, "spec", "replicas"); ok {
		s.Replicas = crd.Int(o, "spec", "replicas")
	}
	switch {
	case crd.Map(o, "spec", "strategy", "canary") != nil:
		s.Strategy = "canary"
		steps, _, _ := unstructured.NestedSlice(o, "spec", "strategy", "canary", "steps")
		s.TotalSteps = len(steps)
	case crd.Map(o, "spec", "strategy", "blueGreen") != nil:
		s.Strategy = "blueGreen"
	}
	if _, ok, _ := unstructured.NestedFieldNoCopy(o, "status", "currentStepIndex"); ok {
		i := crd.Int(o, "status", "currentStepIndex")
		s.CurrentStepIndex = &i
	}
	conds, _, _ := unstructured.NestedSlice(o, "status", "pauseConditions")
	for _, c := range conds {
		if m, ok := c.(map[string]any); ok {
			s.PauseReasons = append(s.PauseReasons, crd.Str(m, "reason"))
		}
	}
	containers, _, _ := unstructured.NestedSlice(o, "spec", "template", "spec", "containers")
	for _, c := range containers {
		if m, ok := c.(map[string]any); ok {
			s.Images = append(s.Images, fmt.Sprint(m["image"]))
		}
	}
	return s
}
