package k8sinventoryreceiver // import "github.com/kestrelai/otelcol-kestrel/receiver/k8sinventoryreceiver"

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/receiver"
	"go.opentelemetry.io/collector/receiver/receiverhelper"
	"go.uber.org/zap"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"

	"github.com/kestrelai/otelcol-kestrel/internal/inventorysources"
	"github.com/kestrelai/otelcol-kestrel/internal/k8scache"
	"github.com/kestrelai/otelcol-kestrel/internal/schema"
	"github.com/kestrelai/otelcol-kestrel/internal/sourcestatus"
	"github.com/kestrelai/otelcol-kestrel/receiver/k8sinventoryreceiver/internal/metadata"
)

// serviceAccountNamespaceFile holds the pod's namespace in a cluster.
const serviceAccountNamespaceFile = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"

type inventoryReceiver struct {
	cfg     *Config
	set     receiver.Settings
	logger  *zap.Logger
	next    consumer.Logs
	obsrecv *receiverhelper.ObsReport
	tb      *metadata.TelemetryBuilder
	status  *sourcestatus.Reporter

	// restConfig builds the client configuration; tests replace it.
	restConfig func() (*rest.Config, error)
	// leaderIdentity names this replica in the Lease; tests replace it.
	leaderIdentity string

	cancel     context.CancelFunc
	done       chan struct{}
	unregister func() // from inventorysources.Register, set by Start
}

func newReceiver(cfg *Config, set receiver.Settings, next consumer.Logs) (*inventoryReceiver, error) {
	obsrecv, err := receiverhelper.NewObsReport(receiverhelper.ObsReportSettings{
		ReceiverID:             set.ID,
		Transport:              "http",
		ReceiverCreateSettings: set,
	})
	if err != nil {
		return nil, err
	}
	tb, err := metadata.NewTelemetryBuilder(set.TelemetrySettings)
	if err != nil {
		return nil, err
	}
	host, _ := os.Hostname()
	return &inventoryReceiver{
		cfg:            cfg,
		set:            set,
		logger:         set.Logger,
		next:           next,
		obsrecv:        obsrecv,
		tb:             tb,
		status:         sourcestatus.New(set.Logger, "Kubernetes API access failed; the other resources keep working", "Kubernetes API access recovered"),
		restConfig:     cfg.RestConfig,
		leaderIdentity: host + "_" + rand.String(8),
	}, nil
}

// Start begins collecting in the background (or competing for the lease first). It fails
// only when no client configuration can be built or, with leader election, the lease
// namespace is neither configured nor found; an unreachable or forbidding apiserver is
// reported through component status and retried.
func (r *inventoryReceiver) Start(_ context.Context, host component.Host) error {
	rc, err := r.restConfig()
	if err != nil {
		return fmt.Errorf("k8s_inventory: %w", err)
	}
	c, err := k8scache.For(rc)
	if err != nil {
		return err
	}
	var le *LeaderElectionConfig
	if cfg := r.cfg.LeaderElection.Get(); cfg != nil {
		copied := *cfg
		if copied.LeaseNamespace == "" {
			if copied.LeaseNamespace, err = podNamespace(); err != nil {
				return err
			}
		}
		le = &copied
	}
	r.status.SetHost(host)
	r.unregister = inventorysources.Register()
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	r.done = make(chan struct{})
	r.tb.K8sInventoryLeader.Record(ctx, 0)
	go func() {
		defer close(r.done)
		if le == nil {
			r.collect(ctx, c)
			return
		}
		r.runElected(ctx, c, le)
	}()
	return nil
}

// Shutdown stops collecting and releases the informers.
func (r *inventoryReceiver) Shutdown(ctx context.Context) error {
	defer r.tb.Shutdown()
	if r.cancel == nil {
		return nil
	}
	r.unregister()
	r.cancel()
	select {
	case <-r.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func podNamespace() (string, error) {
	if ns := os.Getenv("POD_NAMESPACE"); ns != "" {
		return ns, nil
	}
	b, err := os.ReadFile(serviceAccountNamespaceFile)
	if err != nil {
		return "", errors.New("k8s_inventory: leader_election::lease_namespace is not set and neither $POD_NAMESPACE nor the service account namespace file is available")
	}
	return strings.TrimSpace(string(b)), nil
}

// announce emits a snapshot_start record: a snapshot of this source is coming. It opens
// every collection; under leader election a replica also announces itself at start, so
// that the kestrel exporter of a standby replica waits for a snapshot instead of
// committing an empty inventory.
func (r *inventoryReceiver) announce(ctx context.Context) {
	ld := plog.NewLogs()
	sl := ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty()
	sl.Scope().SetName(metadata.ScopeName)
	sl.Scope().SetVersion(r.set.BuildInfo.Version)
	lr := sl.LogRecords().AppendEmpty()
	lr.SetEventName(schema.EventInventorySnapshotStart)
	lr.SetTimestamp(pcommon.NewTimestampFromTime(time.Now()))
	lr.SetSeverityNumber(plog.SeverityNumberInfo)
	octx := r.obsrecv.StartLogsOp(ctx)
	err := r.next.ConsumeLogs(octx, ld)
	r.obsrecv.EndLogsOp(octx, "k8s", 1, err)
	if err != nil {
		r.logger.Warn("The pipeline refused the snapshot_start record", zap.Error(err))
	}
}

// collect runs one collection until ctx ends.
func (r *inventoryReceiver) collect(ctx context.Context, c *k8scache.Cache) {
	r.tb.K8sInventoryLeader.Record(context.Background(), 1)
	defer r.tb.K8sInventoryLeader.Record(context.Background(), 0)
	newCollector(r, c).run(ctx)
}

// runElected competes for the Lease until ctx ends and collects while it holds it. A
// replica that loses the lease stops emitting at once and competes again; when it wins
// again it starts over with a full snapshot.
func (r *inventoryReceiver) runElected(ctx context.Context, c *k8scache.Cache, cfg *LeaderElectionConfig) {
	lock := &resourcelock.LeaseLock{
		LeaseMeta:  metav1.ObjectMeta{Name: cfg.LeaseName, Namespace: cfg.LeaseNamespace},
		Client:     c.Clientset().CoordinationV1(),
		LockConfig: resourcelock.ResourceLockConfig{Identity: r.leaderIdentity},
	}
	r.announce(ctx)
	var collecting sync.WaitGroup
	le, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock:            lock,
		LeaseDuration:   cfg.LeaseDuration,
		RenewDeadline:   cfg.RenewDeadline,
		RetryPeriod:     cfg.RetryPeriod,
		ReleaseOnCancel: true,
		Name:            r.set.ID.String(),
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(ctx context.Context) {
				collecting.Add(1)
				defer collecting.Done()
				r.logger.Info("Acquired the lease; collecting", zap.String("lease", cfg.LeaseNamespace+"/"+cfg.LeaseName))
				r.collect(ctx, c)
			},
			OnStoppedLeading: func() {
				r.logger.Info("Not holding the lease; not collecting", zap.String("lease", cfg.LeaseNamespace+"/"+cfg.LeaseName))
			},
		},
	})
	if err != nil {
		// Validate enforces the same rules, so this is not expected.
		r.status.Fatal("k8s_inventory cannot run", fmt.Errorf("leader election: %w", err))
		return
	}
	for ctx.Err() == nil {
		le.Run(ctx)
		// Run returns once leadership is lost (or was never won before ctx ended); the
		// collection started for it must be over before competing again.
		collecting.Wait()
		select {
		case <-ctx.Done():
		case <-time.After(cfg.RetryPeriod):
		}
	}
}
