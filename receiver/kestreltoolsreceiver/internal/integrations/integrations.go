// Package integrations answers DatadogQueryRequest, which Kestrel Cloud uses as one
// envelope for all integrations: query_type picks the integration and the operation (the
// table Ops). Each integration is its own package; this one checks the request, finds out
// whether the integration is on and present (its CRDs are served, at the moment of the
// request, so CRDs installed or removed while the collector runs are seen at once), runs
// the read and bounds the answer.
package integrations // import "github.com/kestrelai/otelcol-kestrel/receiver/kestreltoolsreceiver/internal/integrations"

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"

	cloudv1 "github.com/kestrelai/otelcol-kestrel/api/cloud/v1"
	"github.com/kestrelai/otelcol-kestrel/api/kestrel/v1alpha1"
	"github.com/kestrelai/otelcol-kestrel/receiver/kestreltoolsreceiver/internal/audit"
	"github.com/kestrelai/otelcol-kestrel/receiver/kestreltoolsreceiver/internal/changerequest"
	"github.com/kestrelai/otelcol-kestrel/receiver/kestreltoolsreceiver/internal/integrations/argocd"
	"github.com/kestrelai/otelcol-kestrel/receiver/kestreltoolsreceiver/internal/integrations/crd"
	"github.com/kestrelai/otelcol-kestrel/receiver/kestreltoolsreceiver/internal/integrations/datadog"
	"github.com/kestrelai/otelcol-kestrel/receiver/kestreltoolsreceiver/internal/integrations/flux"
	"github.com/kestrelai/otelcol-kestrel/receiver/kestreltoolsreceiver/internal/integrations/karpenter"
	"github.com/kestrelai/otelcol-kestrel/receiver/kestreltoolsreceiver/internal/integrations/rollouts"
	"github.com/kestrelai/otelcol-kestrel/receiver/kestreltoolsreceiver/internal/kubeclient"
)

// Name is the tool's name in the audit trail and the self-metrics.
const Name = "integration"

// Op is what one query_type does.
type Op struct {
	// Integration is the integration's name (its configuration section).
	Integration string
	// Write marks operations that change the cluster or Datadog: they wait for approval.
	Write bool
}

// Ops is the one table of query types.
var Ops = map[cloudv1.DatadogQueryType]Op{
	cloudv1.DatadogQueryType_DATADOG_QUERY_METRICS:      {datadog.Name, false},
	cloudv1.DatadogQueryType_DATADOG_QUERY_EVENTS:       {datadog.Name, false},
	cloudv1.DatadogQueryType_DATADOG_QUERY_HOSTS:        {datadog.Name, false},
	cloudv1.DatadogQueryType_DATADOG_QUERY_LOGS:         {datadog.Name, false},
	cloudv1.DatadogQueryType_DATADOG_QUERY_LIST_METRICS: {datadog.Name, false},
	cloudv1.DatadogQueryType_DATADOG_CREATE_MONITOR:     {datadog.Name, true},
	cloudv1.DatadogQueryType_DATADOG_SEND_EVENT:         {datadog.Name, true},
	cloudv1.DatadogQueryType_DATADOG_MUTE_MONITOR:       {datadog.Name, true},
	cloudv1.DatadogQueryType_DATADOG_LIST_MONITORS:      {datadog.Name, false},

	cloudv1.DatadogQueryType_ARGOCD_SYNC_APP:       {argocd.Name, true},
	cloudv1.DatadogQueryType_ARGOCD_GET_APP_STATUS: {argocd.Name, false},
	cloudv1.DatadogQueryType_ARGOCD_LIST_APPS:      {argocd.Name, false},
	cloudv1.DatadogQueryType_ARGOCD_ROLLBACK_APP:   {argocd.Name, true},

	cloudv1.DatadogQueryType_ROLLOUTS_PROMOTE:    {rollouts.Name, true},
	cloudv1.DatadogQueryType_ROLLOUTS_ABORT:      {rollouts.Name, true},
	cloudv1.DatadogQueryType_ROLLOUTS_RETRY:      {rollouts.Name, true},
	cloudv1.DatadogQueryType_ROLLOUTS_UNDO:       {rollouts.Name, true},
	cloudv1.DatadogQueryType_ROLLOUTS_PAUSE:      {rollouts.Name, true},
	cloudv1.DatadogQueryType_ROLLOUTS_RESUME:     {rollouts.Name, true},
	cloudv1.DatadogQueryType_ROLLOUTS_RESTART:    {rollouts.Name, true},
	cloudv1.DatadogQueryType_ROLLOUTS_GET_STATUS: {rollouts.Name, false},
	cloudv1.DatadogQueryType_ROLLOUTS_LIST:       {rollouts.Name, false},

	cloudv1.DatadogQueryType_FLUX_RECONCILE:  {flux.Name, true},
	cloudv1.DatadogQueryType_FLUX_SUSPEND:    {flux.Name, true},
	cloudv1.DatadogQueryType_FLUX_RESUME:     {flux.Name, true},
	cloudv1.DatadogQueryType_FLUX_GET_STATUS: {flux.Name, false},
	cloudv1.DatadogQueryType_FLUX_LIST:       {flux.Name, false},
	cloudv1.DatadogQueryType_FLUX_GET_EVENTS: {flux.Name, false},

	cloudv1.DatadogQueryType_KARPENTER_LIST_NODEPOOLS:      {karpenter.Name, false},
	cloudv1.DatadogQueryType_KARPENTER_GET_NODEPOOL_STATUS: {karpenter.Name, false},
	cloudv1.DatadogQueryType_KARPENTER_LIST_NODECLAIMS:     {karpenter.Name, false},
	cloudv1.DatadogQueryType_KARPENTER_SCALE_NODEPOOL:      {karpenter.Name, true},
	cloudv1.DatadogQueryType_KARPENTER_SET_DISRUPTION:      {karpenter.Name, true},
	cloudv1.DatadogQueryType_KARPENTER_APPLY_NODEPOOL:      {karpenter.Name, true},
	cloudv1.DatadogQueryType_KARPENTER_DELETE_NODECLAIM:    {karpenter.Name, true},
}

// Integration is one integration's reads.
type Integration interface {
	Name() string
	// Available returns nil when the integration is present (its CRDs are served, its keys
	// are configured), else an error whose crd.Code is 503.
	Available(ctx context.Context, c crd.Clients) error
	// Serve answers one read with its status (the upstream one for Datadog) and
	// response_data.
	Serve(ctx context.Context, c crd.Clients, req *cloudv1.DatadogQueryRequest) (int, []byte, error)
	// Plan turns one write into the changes a ChangeRequest proposes (read as the cloud's
	// identity; nothing is written).
	Plan(ctx context.Context, c crd.Clients, req *cloudv1.DatadogQueryRequest) ([]crd.Change, error)
}

// Writer proposes writes as ChangeRequests, which a person approves in the cluster.
type Writer interface {
	ProposeIntegration(ctx context.Context, in changerequest.Integration) *cloudv1.DatadogQueryResponse
}

// Config bounds the requests.
type Config struct {
	DefaultTimeout time.Duration
	MaxTimeout     time.Duration
	// MaxResponseBytes caps response_data; a larger answer is a 413.
	MaxResponseBytes int
	// MaxBodyBytes caps json_body and the other text fields; a larger request is a 413.
	MaxBodyBytes int
}

// Dispatcher answers DatadogQueryRequests.
type Dispatcher struct {
	cfg     Config
	writer  Writer
	client  *kubeclient.Client
	enabled map[string]Integration
	trail   *audit.Trail
}

// New returns a dispatcher for the enabled integrations; the others answer 503.
func New(cfg Config, client *kubeclient.Client, enabled []Integration, writer Writer, trail *audit.Trail) *Dispatcher {
	d := &Dispatcher{cfg: cfg, client: client, enabled: map[string]Integration{}, writer: writer, trail: trail}
	for _, i := range enabled {
		d.enabled[i.Name()] = i
	}
	return d
}

// Serve answers one request; budget is the most response_data the connection can carry.
func (d *Dispatcher) Serve(ctx context.Context, req *cloudv1.DatadogQueryRequest, budget int) *cloudv1.DatadogQueryResponse {
	start := time.Now()
	resp := &cloudv1.DatadogQueryResponse{RequestId: req.GetRequestId()}
	code, data, proposed, err := d.serve(ctx, req, min(budget, d.cfg.MaxResponseBytes))
	if proposed != nil {
		// The ChangeRequest controller answered (and audited) the write.
		return proposed
	}
	resp.StatusCode, resp.ResponseData = int32(code), string(data) //nolint:gosec // G115: HTTP status codes
	if err != nil {
		resp.ErrorMessage = err.Error()
	} else {
		resp.Success = true
	}
	outcome := audit.OK
	switch {
	case code == http.StatusGatewayTimeout:
		outcome = audit.Timeout
	case code == http.StatusBadRequest || code == http.StatusServiceUnavailable || code == http.StatusRequestEntityTooLarge || code == http.StatusForbidden:
		outcome = audit.Refused
	case err != nil:
		outcome = audit.Error
	}
	d.trail.Add(ctx, audit.Record{RequestID: req.GetRequestId(), Tool: Name, Input: Describe(req), Identity: d.client.Identity(),
		Outcome: outcome, Reason: resp.GetErrorMessage(), StatusCode: code, Bytes: len(data), Duration: time.Since(start)})
	return resp
}

// Describe is the request in one line, for the audit (json_body by its size only).
func Describe(req *cloudv1.DatadogQueryRequest) string {
	s := fmt.Sprintf("%s filter=%q", req.GetQueryType(), req.GetFilter())
	if q := req.GetQuery(); q != "" {
		s += fmt.Sprintf(" query=%q", q)
	}
	if b := req.GetJsonBody(); b != "" {
		s += fmt.Sprintf(" json_body=(%d bytes)", len(b))
	}
	return s
}

// serve answers a read with its code and data, a write with the controller's answer.
func (d *Dispatcher) serve(ctx context.Context, req *cloudv1.DatadogQueryRequest, budget int) (int, []byte, *cloudv1.DatadogQueryResponse, error) {
	op, ok := Ops[req.GetQueryType()]
	if !ok {
		return http.StatusBadRequest, nil, nil, fmt.Errorf("unknown query_type %d: this collector answers %s", int32(req.GetQueryType()), known())
	}
	in, ok := d.enabled[op.Integration]
	if !ok {
		return http.StatusServiceUnavailable, nil, nil, fmt.Errorf("the %s integration is not enabled in this collector (kestrel_tools integrations::%s::enabled)", op.Integration, op.Integration)
	}
	for _, f := range []string{req.GetJsonBody(), req.GetFilter(), req.GetQuery(), req.GetSort()} {
		if len(f) > d.cfg.MaxBodyBytes {
			return http.StatusRequestEntityTooLarge, nil, nil, fmt.Errorf("the request carries a field of %d bytes; at most %d are accepted", len(f), d.cfg.MaxBodyBytes)
		}
	}
	if req.GetMaxResults() < 0 || req.GetTimeoutSeconds() < 0 {
		return http.StatusBadRequest, nil, nil, errors.New("max_results and timeout_seconds must not be negative")
	}
	ctx, cancel := context.WithTimeout(ctx, d.timeout(req.GetTimeoutSeconds()))
	defer cancel()
	c, err := d.clients(ctx)
	if err != nil {
		return http.StatusInternalServerError, nil, nil, err
	}
	if err := in.Available(ctx, c); err != nil {
		return crd.Code(err), nil, nil, err
	}
	if op.Write {
		plan, err := in.Plan(ctx, c, req)
		if err != nil {
			return crd.Code(err), nil, nil, err
		}
		in := changerequest.Integration{RequestID: req.GetRequestId(), Operation: req.GetQueryType().String()}
		for _, ch := range plan {
			in.Changes = append(in.Changes, changerequest.Change{Object: ch.Object, Action: v1alpha1.Action(cmp.Or(ch.Action, crd.MergePatch)), Subresource: ch.Subresource})
		}
		return 0, nil, d.writer.ProposeIntegration(ctx, in), nil
	}
	code, data, err := in.Serve(ctx, c, req)
	if err != nil {
		if ctx.Err() != nil {
			return http.StatusGatewayTimeout, nil, nil, fmt.Errorf("%s: no answer within the request's deadline: %w", req.GetQueryType(), err)
		}
		return crd.Code(err), nil, nil, err
	}
	if len(data) > budget {
		return http.StatusRequestEntityTooLarge, nil, nil, fmt.Errorf("the answer is %d bytes; at most %d fit (narrow it with filter or max_results)", len(data), budget)
	}
	// An upstream error (Datadog's) keeps its status and body.
	return code, data, nil, datadog.Describe(code, data)
}

func (d *Dispatcher) timeout(seconds int32) time.Duration {
	if seconds <= 0 {
		return d.cfg.DefaultTimeout
	}
	return min(time.Duration(seconds)*time.Second, d.cfg.MaxTimeout)
}

// clients are the discovery and dynamic clients of one request, as the cloud's identity.
func (d *Dispatcher) clients(ctx context.Context) (crd.Clients, error) {
	rc := d.client.Config(ctx, nil)
	disc, err := discovery.NewDiscoveryClientForConfig(rc)
	if err != nil {
		return crd.Clients{}, err
	}
	dyn, err := dynamic.NewForConfig(rc)
	if err != nil {
		return crd.Clients{}, err
	}
	return crd.Clients{Discovery: disc, Dynamic: dyn}, nil
}

// Flags says which integrations are on and present, for the InventoryCommit.
func (d *Dispatcher) Flags(ctx context.Context) *cloudv1.InventoryCommit {
	out := &cloudv1.InventoryCommit{}
	c, err := d.clients(ctx)
	if err != nil {
		return out
	}
	present := func(name string) bool {
		in, ok := d.enabled[name]
		return ok && in.Available(ctx, c) == nil
	}
	out.HasDatadog = present(datadog.Name)
	out.HasArgocd = present(argocd.Name)
	out.HasRollouts = present(rollouts.Name)
	out.HasFlux = present(flux.Name)
	out.HasKarpenter = present(karpenter.Name)
	return out
}

func known() string {
	var names []string
	for _, n := range []string{datadog.Name, argocd.Name, rollouts.Name, flux.Name, karpenter.Name} {
		lo, hi := int32(1<<30), int32(0)
		for t, op := range Ops {
			if op.Integration == n {
				lo, hi = min(lo, int32(t)), max(hi, int32(t))
			}
		}
		names = append(names, fmt.Sprintf("%d–%d (%s)", lo, hi, n))
	}
	return strings.Join(names, ", ")
}
