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

// integrations is the presence of the tools Kestrel Cloud can work with.
type integrations struct {
	datadog, argocd, rollouts, flux, karpenter bool
}

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
func (c *collector) detectIntegrations() integrations {
	var in integrations
	has := func(names []string) bool {
		for _, n := range names {
			if c.get(k8scache.CustomResourceDefinitions, "", n) != nil {
				return true
			}
		}
		return false
	}
	in.argocd = has(argoCDCRDs)
	in.rollouts = has(rolloutsCRDs)
	in.karpenter = has(karpenterCRDs)
	for _, w := range c.byRes[k8scache.CustomResourceDefinitions] {
		for _, name := range w.inf.GetIndexer().ListKeys() {
			in.flux = in.flux || strings.HasSuffix(name, fluxGroup)
			in.datadog = in.datadog || strings.HasSuffix(name, datadogGroup)
		}
	}
	for _, w := range c.byRes[k8scache.Services] {
		for _, obj := range w.inf.GetIndexer().List() {
			s, ok := obj.(*corev1.Service)
			if !ok || c.excluded(s.Namespace) {
				continue
			}
			in.argocd = in.argocd || slices.Contains(argoCDServices, s.Name)
			in.datadog = in.datadog || slices.Contains(datadogServices, s.Name)
		}
	}
	return in
}

func (c *collector) emitFlags(in integrations) {
	lr := c.record(schema.EventInventorySnapshotComplete, plog.SeverityNumberInfo)
	m := lr.Attributes()
	m.PutBool(schema.AttrIntegrationDatadog, in.datadog)
	m.PutBool(schema.AttrIntegrationArgoCD, in.argocd)
	m.PutBool(schema.AttrIntegrationArgoRollouts, in.rollouts)
	m.PutBool(schema.AttrIntegrationFlux, in.flux)
	m.PutBool(schema.AttrIntegrationKarpenter, in.karpenter)
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
		zap.Bool("datadog", in.datadog), zap.Bool("argocd", in.argocd), zap.Bool("argo_rollouts", in.rollouts),
		zap.Bool("flux", in.flux), zap.Bool("karpenter", in.karpenter))
}

// integrationsChanged emits a new snapshot_complete record when presence changed.
func (c *collector) integrationsChanged() {
	in := c.detectIntegrations()
	if in == c.emitted {
		return
	}
	c.logger.Info("Integration presence changed",
		zap.Bool("datadog", in.datadog), zap.Bool("argocd", in.argocd), zap.Bool("argo_rollouts", in.rollouts),
		zap.Bool("flux", in.flux), zap.Bool("karpenter", in.karpenter))
	c.emitFlags(in)
}
