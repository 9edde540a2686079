package metricsstoreprocessor // import "github.com/kestrelai/otelcol-kestrel/processor/metricsstoreprocessor"

import (
	"context"
	"fmt"
	"sync"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"
	"k8s.io/client-go/tools/cache"

	cloudv1 "github.com/kestrelai/otelcol-kestrel/api/cloud/v1"
	"github.com/kestrelai/otelcol-kestrel/internal/cloudconn"
	"github.com/kestrelai/otelcol-kestrel/internal/podowner"
	"github.com/kestrelai/otelcol-kestrel/processor/metricsstoreprocessor/internal/metadata"
	"github.com/kestrelai/otelcol-kestrel/processor/metricsstoreprocessor/internal/store"
)

// A processor instance exists per pipeline, but one metrics_store/<name> is one store: the
// instances share it (and its query handler, which the connection accepts only once).
var (
	sharedMu sync.Mutex
	shared   = map[component.ID]*sharedStore{}
)

type sharedStore struct {
	id     component.ID
	cfg    *Config
	logger *zap.Logger
	store  *store.Store
	tel    *metadata.TelemetryBuilder

	mu      sync.Mutex
	refs    int // processor instances not shut down yet
	started bool
	// unregister removes the query handler from the connection; nil without one.
	unregister func()
	stop       chan struct{}
	wg         sync.WaitGroup
	// owners resolves pods through the Kubernetes API when the kubernetes section is set.
	owners *podowner.Informed
}

type metricsStoreProcessor struct {
	shared       *sharedStore
	shutdownOnce sync.Once
}

func newProcessor(set processor.Settings, cfg *Config) (*metricsStoreProcessor, error) {
	sharedMu.Lock()
	defer sharedMu.Unlock()
	sh, ok := shared[set.ID]
	if !ok {
		tel, err := metadata.NewTelemetryBuilder(set.TelemetrySettings)
		if err != nil {
			return nil, err
		}
		sh = &sharedStore{
			id:     set.ID,
			cfg:    cfg,
			logger: set.Logger,
			tel:    tel,
			store: store.New(store.Config{
				Retention:        cfg.Retention,
				MaxSeries:        cfg.MaxSeries,
				RingSize:         cfg.RingSize,
				MaxBytes:         cfg.MaxBytes,
				MaxResponseBytes: cfg.MaxResponseBytes,
				ResourceLabels:   cfg.ResourceAttributes,
			}),
		}
		err = tel.RegisterMetricsStoreSeriesCallback(func(_ context.Context, o metric.Int64Observer) error {
			n, _ := sh.store.Stats()
			o.Observe(int64(n))
			return nil
		})
		if err == nil {
			err = tel.RegisterMetricsStoreBytesCallback(func(_ context.Context, o metric.Int64Observer) error {
				_, b := sh.store.Stats()
				o.Observe(b)
				return nil
			})
		}
		if err != nil {
			tel.Shutdown()
			return nil, err
		}
		shared[set.ID] = sh
	}
	sh.refs++
	return &metricsStoreProcessor{shared: sh}, nil
}

func (p *metricsStoreProcessor) processMetrics(ctx context.Context, md pmetric.Metrics) (pmetric.Metrics, error) {
	p.shared.record(ctx, p.shared.store.Ingest(md))
	return md, nil
}

func (p *metricsStoreProcessor) start(_ context.Context, host component.Host) error {
	sh := p.shared
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.started {
		return nil
	}
	if err := sh.register(host); err != nil {
		return err
	}
	if err := sh.startOwners(host); err != nil {
		sh.unregisterQueries()
		return err
	}
	sh.started = true
	sh.stop = make(chan struct{})
	sh.wg.Add(1)
	go sh.evictLoop() //nolint:gosec // runs until shutdown; Start's ctx must not outlive Start (component.Component)
	if sh.owners != nil {
		sh.wg.Add(1)
		go sh.useOwnersWhenSynced()
	}
	return nil
}

// startOwners joins the process's shared informers when the kubernetes section is set.
func (sh *sharedStore) startOwners(host component.Host) error {
	api := sh.cfg.Kubernetes.Get()
	if api == nil {
		return nil
	}
	owners, err := podowner.Open(api, sh.logger, host)
	if err != nil {
		return fmt.Errorf("metrics_store: kubernetes: %w", err)
	}
	sh.owners = owners
	return nil
}

// useOwnersWhenSynced hands the pod owners to the store once the informers hold the
// cluster's state; the store then re-resolves the series it already has.
func (sh *sharedStore) useOwnersWhenSynced() {
	defer sh.wg.Done()
	if cache.WaitForCacheSync(sh.stop, sh.owners.HasSynced) {
		sh.store.SetResolver(sh.owners)
	}
}

// register installs the query handler on the kestrel_command connection, if there is one.
func (sh *sharedStore) register(host component.Host) error {
	ext, ok := host.GetExtensions()[sh.cfg.Connection]
	if !ok {
		sh.logger.Info("Kestrel Cloud connection extension not configured; metrics are stored but cannot be queried from the cloud",
			zap.String("connection", sh.cfg.Connection.String()))
		return nil
	}
	provider, ok := ext.(cloudconn.Provider)
	if !ok {
		return fmt.Errorf("extension %q does not provide a Kestrel Cloud connection", sh.cfg.Connection)
	}
	conn := provider.Connection()
	if limit := conn.MaxMessageBytes() - envelopeHeadroom; sh.cfg.MaxResponseBytes > limit {
		return fmt.Errorf("max_response_bytes (%d) must be at most %d: %q carries messages of up to %d bytes, envelope included",
			sh.cfg.MaxResponseBytes, limit, sh.cfg.Connection, conn.MaxMessageBytes())
	}
	unregister, err := conn.Handle(&cloudv1.MetricsQueryRequest{}, sh.handle)
	if err != nil {
		return fmt.Errorf("registering the metrics query handler on %q: %w", sh.cfg.Connection, err)
	}
	sh.unregister = unregister
	return nil
}

func (sh *sharedStore) unregisterQueries() {
	if sh.unregister != nil {
		sh.unregister()
		sh.unregister = nil
	}
}

func (p *metricsStoreProcessor) shutdown(context.Context) error {
	p.shutdownOnce.Do(func() {
		sh := p.shared
		sharedMu.Lock()
		sh.refs--
		last := sh.refs == 0
		if last {
			delete(shared, sh.id)
		}
		sharedMu.Unlock()
		if !last {
			return
		}
		sh.mu.Lock()
		// The connection outlives the pipelines; from now on it answers queries as unsupported.
		sh.unregisterQueries()
		started := sh.started
		sh.mu.Unlock()
		if started {
			close(sh.stop)
			sh.wg.Wait()
		}
		if sh.owners != nil {
			sh.owners.Close()
		}
		sh.tel.Shutdown()
	})
	return nil
}

func (sh *sharedStore) evictLoop() {
	defer sh.wg.Done()
	t := time.NewTicker(sh.cfg.EvictionInterval)
	defer t.Stop()
	for {
		select {
		case <-sh.stop:
			return
		case <-t.C:
			sh.record(context.Background(), sh.store.Evict())
		}
	}
}

// handle answers a MetricsQueryRequest from Kestrel Cloud.
func (sh *sharedStore) handle(ctx context.Context, msg proto.Message) proto.Message {
	req, ok := msg.(*cloudv1.MetricsQueryRequest)
	if !ok {
		return &cloudv1.MetricsQueryResponse{ErrorMessage: fmt.Sprintf("metrics store cannot answer %T", msg)}
	}
	began := time.Now()
	resp := sh.store.Query(ctx, req)
	outcome := "ok"
	switch {
	case resp.GetErrorMessage() != "":
		outcome = "error"
		sh.logger.Debug("Metrics query failed", zap.String("request_id", req.GetRequestId()), zap.String("error", resp.GetErrorMessage()))
	case resp.GetTruncated():
		outcome = "truncated"
	}
	sh.tel.MetricsStoreQueryDuration.Record(ctx, time.Since(began).Seconds())
	sh.tel.MetricsStoreQueries.Add(ctx, 1, metric.WithAttributeSet(attribute.NewSet(attribute.String("outcome", outcome))))
	return resp
}

var (
	dropAttrs  = reasonSets(store.DropReasons[:])
	evictAttrs = reasonSets(store.EvictReasons[:])
	maxSeries  = metric.WithAttributeSet(attribute.NewSet(attribute.String("reason", "max_series")))
)

func reasonSets(reasons []string) []metric.AddOption {
	out := make([]metric.AddOption, len(reasons))
	for i, r := range reasons {
		out[i] = metric.WithAttributeSet(attribute.NewSet(attribute.String("reason", r)))
	}
	return out
}

// record adds one Ingest or Evict call's counts to the processor's own telemetry.
func (sh *sharedStore) record(ctx context.Context, c store.Counts) {
	if c.PointsStored > 0 {
		sh.tel.MetricsStorePointsStored.Add(ctx, c.PointsStored)
	}
	for i, n := range c.PointsDropped {
		if n > 0 {
			sh.tel.MetricsStorePointsDropped.Add(ctx, n, dropAttrs[i])
		}
	}
	for i, n := range c.PointsEvicted {
		if n > 0 {
			sh.tel.MetricsStorePointsEvicted.Add(ctx, n, evictAttrs[i])
		}
	}
	for i, n := range c.SeriesEvicted {
		if n > 0 {
			sh.tel.MetricsStoreSeriesEvicted.Add(ctx, n, evictAttrs[i])
		}
	}
	if c.SeriesRefused > 0 {
		sh.tel.MetricsStoreSeriesRefused.Add(ctx, c.SeriesRefused, maxSeries)
	}
}
