// Package restart answers OperatorRestartRequest. The answer goes out first; the restart
// follows after the request's delay (capped) on its own goroutine, so the connection keeps
// serving meanwhile. A rollout patches the pod template of the collector's own Deployment
// (RBAC limits the collector to that one Deployment); an exit reports a fatal error so the
// collector shuts down cleanly and exits non-zero, and the kubelet starts it again.
package restart // import "github.com/kestrelai/otelcol-kestrel/receiver/kestreltoolsreceiver/internal/restart"

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.uber.org/zap"
	"google.golang.org/protobuf/types/known/timestamppb"
	authorizationv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	cloudv1 "github.com/kestrelai/otelcol-kestrel/api/cloud/v1"
	"github.com/kestrelai/otelcol-kestrel/receiver/kestreltoolsreceiver/internal/audit"
)

// Name is the tool's name in the audit trail and the self-metrics.
const Name = "operator_restart"

// Annotations set on the pod template by a rollout.
const (
	AnnotationRestartedAt = "kestrel.ai/restartedAt"
	AnnotationReason      = "kestrel.ai/restart-reason"
)

// minDelay lets the answer reach the cloud before the restart begins.
const minDelay = time.Second

// maxReason bounds the reason kept in the pod template's annotation.
const maxReason = 256

// Config configures the tool.
type Config struct {
	// Rollout patches Deployment in Namespace; otherwise Exit is called.
	Rollout    bool
	Namespace  string
	Deployment string
	MaxDelay   time.Duration
}

// Tool serves OperatorRestartRequests.
type Tool struct {
	cfg    Config
	cs     kubernetes.Interface
	exit   func(error)
	trail  *audit.Trail
	logger *zap.Logger

	ctx context.Context
	wg  sync.WaitGroup
	mu  sync.Mutex
	// scheduled is set once a restart is on its way; later requests are told so.
	scheduled bool
}

// New returns the tool. cs is the collector's own client (rollout); exit stops the
// collector with an error. Pending restarts end with ctx.
func New(ctx context.Context, cfg Config, cs kubernetes.Interface, exit func(error), trail *audit.Trail, logger *zap.Logger) *Tool {
	return &Tool{cfg: cfg, cs: cs, exit: exit, trail: trail, logger: logger, ctx: ctx}
}

// Serve answers the request and schedules the restart.
func (t *Tool) Serve(ctx context.Context, req *cloudv1.OperatorRestartRequest) *cloudv1.OperatorRestartResponse {
	start := time.Now()
	resp := &cloudv1.OperatorRestartResponse{RequestId: req.GetRequestId()}
	delay := max(min(time.Duration(req.GetDelaySeconds())*time.Second, t.cfg.MaxDelay), minDelay)
	how := "exit (the kubelet restarts the container)"
	if t.cfg.Rollout {
		how = fmt.Sprintf("rolling restart of Deployment %s/%s", t.cfg.Namespace, t.cfg.Deployment)
	}
	rec := audit.Record{RequestID: req.GetRequestId(), Tool: Name, Input: fmt.Sprintf("%s in %v: %s", how, delay, req.GetReason()), Outcome: audit.OK}
	defer func() {
		rec.Duration = time.Since(start)
		t.trail.Add(ctx, rec)
	}()
	if t.cfg.Rollout {
		if err := t.canPatch(ctx); err != nil {
			resp.ErrorMessage = err.Error()
			rec.Outcome, rec.Reason = audit.Refused, resp.ErrorMessage
			return resp
		}
	}
	t.mu.Lock()
	already := t.scheduled
	t.scheduled = true
	t.mu.Unlock()
	if already {
		resp.ErrorMessage = "a restart is already scheduled"
		rec.Outcome, rec.Reason = audit.Refused, resp.ErrorMessage
		return resp
	}
	at := time.Now().Add(delay)
	resp.Success, resp.InitiatedAt = true, timestamppb.New(at)
	t.wg.Add(1)
	go func() {
		defer t.wg.Done()
		timer := time.NewTimer(delay)
		defer timer.Stop()
		select {
		case <-t.ctx.Done():
			return
		case <-timer.C:
		}
		t.restart(req.GetReason())
	}()
	return resp
}

func (t *Tool) canPatch(ctx context.Context) error {
	r, err := t.cs.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, &authorizationv1.SelfSubjectAccessReview{
		Spec: authorizationv1.SelfSubjectAccessReviewSpec{ResourceAttributes: &authorizationv1.ResourceAttributes{
			Namespace: t.cfg.Namespace, Verb: "patch", Group: "apps", Resource: "deployments", Name: t.cfg.Deployment}}}, metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("checking the right to restart: %w", err)
	}
	if !r.Status.Allowed {
		return fmt.Errorf("the collector may not patch Deployment %s/%s (config/rbac/restart.yaml grants it)", t.cfg.Namespace, t.cfg.Deployment)
	}
	return nil
}

func (t *Tool) restart(reason string) {
	if !t.cfg.Rollout {
		t.logger.Warn("Restarting on Kestrel Cloud's request: stopping with an error so that the container is restarted", zap.String("reason", reason))
		t.exit(errors.New("restart requested by Kestrel Cloud: " + reason))
		return
	}
	if len(reason) > maxReason {
		reason = reason[:maxReason]
	}
	patch, err := json.Marshal(map[string]any{"spec": map[string]any{"template": map[string]any{"metadata": map[string]any{
		"annotations": map[string]string{AnnotationRestartedAt: time.Now().UTC().Format(time.RFC3339), AnnotationReason: reason}}}}})
	if err == nil {
		ctx, cancel := context.WithTimeout(t.ctx, 30*time.Second)
		defer cancel()
		_, err = t.cs.AppsV1().Deployments(t.cfg.Namespace).Patch(ctx, t.cfg.Deployment, types.StrategicMergePatchType, patch,
			metav1.PatchOptions{FieldManager: "kestrel-operator"})
	}
	t.mu.Lock()
	t.scheduled = false
	t.mu.Unlock()
	if err != nil {
		t.logger.Error("Rolling restart requested by Kestrel Cloud failed", zap.Error(err))
		return
	}
	t.logger.Info("Rolling restart requested by Kestrel Cloud started", zap.String("deployment", t.cfg.Deployment), zap.String("reason", reason))
}

// Wait returns once no restart goroutine runs (after ctx ended).
func (t *Tool) Wait() { t.wg.Wait() }
