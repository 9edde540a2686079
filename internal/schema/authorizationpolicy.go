package schema

import (
	"fmt"
	"slices"

	"k8s.io/apimachinery/pkg/runtime"
)

// AuthorizationPolicySpec is the part of an Istio AuthorizationPolicy's spec that
// cloud.v1.AuthorizationPolicySpec can carry, with the Istio API's JSON names: the body of
// an EventInventoryAuthorizationPolicy record is {"spec": this}.
type AuthorizationPolicySpec struct {
	Selector *struct {
		MatchLabels map[string]string `json:"matchLabels"`
	} `json:"selector"`
	// Action is one of AuthorizationPolicyActions, or "" for Istio's default, ALLOW.
	Action string `json:"action"`
	Rules  []struct {
		From []struct {
			Source struct {
				Principals        []string `json:"principals"`
				RequestPrincipals []string `json:"requestPrincipals"`
				Namespaces        []string `json:"namespaces"`
				IPBlocks          []string `json:"ipBlocks"`
				RemoteIPBlocks    []string `json:"remoteIpBlocks"`
			} `json:"source"`
		} `json:"from"`
		To []struct {
			Operation struct {
				Methods []string `json:"methods"`
				Paths   []string `json:"paths"`
				Ports   []string `json:"ports"`
				Hosts   []string `json:"hosts"`
			} `json:"operation"`
		} `json:"to"`
		When []struct {
			Key       string   `json:"key"`
			Values    []string `json:"values"`
			NotValues []string `json:"notValues"`
		} `json:"when"`
	} `json:"rules"`
}

// AuthorizationPolicyActions are the actions of the Istio API.
var AuthorizationPolicyActions = []string{"ALLOW", "DENY", "AUDIT", "CUSTOM"}

// ParseAuthorizationPolicySpec decodes an AuthorizationPolicy's spec as found in the object
// (unstructured JSON values). It fails when a field has the wrong type or the action is
// unknown, so that a producer can reject an invalid object before emitting it.
func ParseAuthorizationPolicySpec(spec map[string]any) (*AuthorizationPolicySpec, error) {
	var s AuthorizationPolicySpec
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(spec, &s); err != nil {
		return nil, err
	}
	if s.Action != "" && !slices.Contains(AuthorizationPolicyActions, s.Action) {
		return nil, fmt.Errorf("unknown action %q", s.Action)
	}
	return &s, nil
}
