package k8sinventoryreceiver // import "github.com/kestrelai/otelcol-kestrel/receiver/k8sinventoryreceiver"

import (
	"context"
	"slices"
	"strings"

	"go.opentelemetry.io/collector/pdata/plog"
	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"

	"github.com/kestrelai/otelcol-kestrel/internal/k8scache"
	"github.com/kestrelai/otelcol-kestrel/internal/schema"
)

// CRDs and CRD groups whose presence reveals an integration.
var (
	argoCDCRDs    = []string{"applications.argoproj.io"}
	rolloutsCRDs  = []string{"rollouts.argoproj.io"}
	karpenterCRDs = []string{"nodepools.karpenter.sh", "nodeclaims.karpenter.sh", "provisioners.karpenter.sh"}
	fluxGroup     = ".toolkit.fluxcd.io"
	datadogGroup  = ".datadoghq.com"
)

// Services whose presence reveals an integration installed without CRDs.
var (
	argoCDServices  = []string{"argocd-server"}
	datadogServices = []string{"datadog-cluster-agent", "datadog-agent"}
)

func integrationService(name string) bool {
	return slices.Contains(argoCDServices, name) || slices.Contains(datadogServices, name)
}

// detectIntegrations reads the CRD and Service caches.
func (c *collector) detectIntegrations() schema.Integrations {
	var in schema.Integrations
	has := func(names []string) bool {
		for _, n := range names {
			if c.get(k8scache.CustomResourceDefinitions, "", n) != nil {
				return true
			}
		}
		return false
	}
	in.ArgoCD = has(argoCDCRDs)
	in.ArgoRollouts = has(rolloutsCRDs)
	in.Karpenter = has(karpenterCRDs)
	for _, w := range c.byRes[k8scache.CustomResourceDefinitions] {
		for _, name := range w.inf.GetIndexer().ListKeys() {
			in.Flux = in.Flux || strings.HasSuffix(name, fluxGroup)
			in.Datadog = in.Datadog || strings.HasSuffix(name, datadogGroup)
		}
	}
	for _, w := range c.byRes[k8scache.Services] {
		for _, obj := range w.inf.GetIndexer().List() {
			s, ok := obj.(*corev1.Service)
			if !ok || c.excluded(s.Namespace) {
				continue
			}
			in.ArgoCD = in.ArgoCD || slices.Contains(argoCDServices, s.Name)
			in.Datadog = in.Datadog || slices.Contains(datadogServices, s.Name)
		}
	}
	return in
}

func (c *collector) emitFlags(in schema.Integrations) {
	lr := c.record(schema.EventInventorySnapshotComplete, plog.SeverityNumberInfo)
	schema.IntegrationFields.Put(lr.Attributes(), &in)
	c.emitted = in
}

// snapshotComplete ends the initial snapshot.
func (c *collector) snapshotComplete() {
	c.snapshotDone = true
	c.recheckFlags = false
	in := c.detectIntegrations()
	c.emitFlags(in)
	took := c.now().Sub(c.started)
	c.r.tb.K8sInventorySnapshotDuration.Record(context.Background(), took.Seconds())
	c.logger.Info("Initial Kubernetes inventory snapshot complete",
		zap.Duration("took", took),
		zap.Bool("datadog", in.Datadog), zap.Bool("argocd", in.ArgoCD), zap.Bool("argo_rollouts", in.ArgoRollouts),
		zap.Bool("flux", in.Flux), zap.Bool("karpenter", in.Karpenter))
}

// integrationsChanged emits a new snapshot_complete record when presence changed.
func (c *collector) integrationsChanged() {
	in := c.detectIntegrations()
	if in == c.emitted {
		return
	}
	c.logger.Info("Integration presence changed",
		zap.Bool("datadog", in.Datadog), zap.Bool("argocd", in.ArgoCD), zap.Bool("argo_rollouts", in.ArgoRollouts),
		zap.Bool("flux", in.Flux), zap.Bool("karpenter", in.Karpenter))
	c.emitFlags(in)
}
