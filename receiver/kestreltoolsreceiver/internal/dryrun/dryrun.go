// Package dryrun answers YamlDryRunRequest: every manifest is decoded within bounds
// (internal/manifest) and each of its objects server-side applied with dryRun=All
// (internal/ssa), so creating an object and changing an existing one both pass through the
// apiserver's real validation and admission. The answer per manifest is valid, or the API's
// status code with its field-level causes, and the diff from the live object.
package dryrun // import "github.com/kestrelai/otelcol-kestrel/receiver/kestreltoolsreceiver/internal/dryrun"

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	cloudv1 "github.com/kestrelai/otelcol-kestrel/api/cloud/v1"
	"github.com/kestrelai/otelcol-kestrel/receiver/kestreltoolsreceiver/internal/audit"
	"github.com/kestrelai/otelcol-kestrel/receiver/kestreltoolsreceiver/internal/manifest"
	"github.com/kestrelai/otelcol-kestrel/receiver/kestreltoolsreceiver/internal/ssa"
)

// Name is the tool's name in the audit trail and the self-metrics.
const Name = "yaml_dry_run"

// Config is the tool's part of the receiver's configuration.
type Config struct {
	DefaultTimeout time.Duration
	MaxTimeout     time.Duration
	Limits         manifest.Limits
}

// Tool serves YamlDryRunRequests.
type Tool struct {
	cfg      Config
	applier  *ssa.Applier
	identity string
	trail    *audit.Trail
}

// New returns the tool; applier runs as identity.
func New(cfg Config, applier *ssa.Applier, identity string, trail *audit.Trail) *Tool {
	return &Tool{cfg: cfg, applier: applier, identity: identity, trail: trail}
}

// Timeout is the deadline of a request asking for seconds (0: the default), capped.
func Timeout(seconds int32, def, maxT time.Duration) time.Duration {
	if seconds <= 0 {
		return def
	}
	return min(time.Duration(seconds)*time.Second, maxT)
}

// Serve answers one request; budget bounds the diffs of the whole answer.
func (t *Tool) Serve(ctx context.Context, req *cloudv1.YamlDryRunRequest, budget int) *cloudv1.YamlDryRunResponse {
	resp := &cloudv1.YamlDryRunResponse{RequestId: req.GetRequestId()}
	if len(req.GetYamlManifests()) == 0 {
		resp.GlobalErrorMessage = "no yaml_manifests in the request"
		t.trail.Add(ctx, audit.Record{RequestID: req.GetRequestId(), Tool: Name, Identity: t.identity,
			Outcome: audit.Refused, Reason: resp.GlobalErrorMessage, StatusCode: http.StatusBadRequest})
		return resp
	}
	timeout := Timeout(req.GetTimeoutSeconds(), t.cfg.DefaultTimeout, t.cfg.MaxTimeout)
	ctx, cancel := context.WithTimeoutCause(ctx, timeout, fmt.Errorf("%w: the request's deadline of %v passed", context.DeadlineExceeded, timeout))
	defer cancel()
	for _, m := range req.GetYamlManifests() {
		start := time.Now()
		res, objects := Check(ctx, t.applier, m, t.cfg.Limits)
		if len(res.Diff) > budget {
			res.Diff = res.Diff[:max(budget, 0)] + "\n… (diff truncated to fit the response)\n"
		}
		budget -= len(res.Diff) + len(res.ErrorMessage)
		out := res.ToProto(m.GetManifestId())
		resp.Results = append(resp.Results, out)
		outcome := audit.OK
		switch {
		case res.StatusCode == http.StatusBadRequest:
			outcome = audit.Refused
		case res.StatusCode == http.StatusGatewayTimeout:
			outcome = audit.Timeout
		case !res.Valid:
			outcome = audit.Error
		}
		t.trail.Add(ctx, audit.Record{RequestID: req.GetRequestId(), Tool: Name, Identity: t.identity,
			Input: Input(m, objects), Outcome: outcome, Reason: res.ErrorMessage, StatusCode: int(res.StatusCode),
			Bytes: len(out.GetDiff()), Duration: time.Since(start)})
	}
	return resp
}

// Input describes a manifest for the audit trail: its id and the objects in it.
func Input(m *cloudv1.YamlManifest, objects []*unstructured.Unstructured) string {
	s := "manifest " + m.GetManifestId()
	for i, o := range objects {
		sep := ", "
		if i == 0 {
			sep = ": "
		}
		s += sep + manifest.Name(o)
	}
	return s
}

// Result is the dry-run of one manifest (all of its objects).
type Result struct {
	Valid        bool
	StatusCode   int32
	ErrorMessage string
	Diff         string
	// Objects are the results per object; empty when the manifest did not decode.
	Objects []ssa.Result
}

// ToProto is the result as the cloud reads it.
func (r Result) ToProto(id string) *cloudv1.YamlValidationResult {
	return &cloudv1.YamlValidationResult{ManifestId: id, Valid: r.Valid, StatusCode: r.StatusCode,
		ErrorMessage: r.ErrorMessage, Diff: r.Diff}
}

// Check decodes one manifest and dry-runs its objects. It also returns the objects, their
// namespaces filled in as they would be applied.
func Check(ctx context.Context, a *ssa.Applier, m *cloudv1.YamlManifest, l manifest.Limits) (Result, []*unstructured.Unstructured) {
	objs, err := manifest.Decode(m.GetYamlContent(), l)
	if err != nil {
		code, msg := ssa.Describe(err)
		return Result{StatusCode: code, ErrorMessage: msg}, nil
	}
	res := Result{Valid: true, StatusCode: http.StatusOK}
	var errs, diffs []string
	for _, o := range objs {
		r := a.DryRun(ctx, o, m.GetNamespace())
		res.Objects = append(res.Objects, r)
		if !r.OK() {
			if res.Valid {
				res.StatusCode = r.StatusCode
			}
			res.Valid = false
			errs = append(errs, prefix(len(objs), r.Object, r.Message))
			continue
		}
		if r.Diff != "" {
			diffs = append(diffs, "# "+r.Object+"\n"+r.Diff)
		}
	}
	res.ErrorMessage = strings.Join(errs, "\n")
	res.Diff = strings.Join(diffs, "")
	return res, objs
}

func prefix(n int, object, msg string) string {
	if n == 1 {
		return msg
	}
	return object + ": " + msg
}
