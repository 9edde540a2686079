package kestrelexporter // import "github.com/kestrelai/otelcol-kestrel/exporter/kestrelexporter"

import (
	"context"
	"fmt"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/kestrelai/otelcol-kestrel/exporter/kestrelexporter/internal/metadata"
	"github.com/kestrelai/otelcol-kestrel/internal/cloudconn"
	"github.com/kestrelai/otelcol-kestrel/internal/logmap"
)

const (
	// reasonRejected counts records whose message the connection refused to carry.
	reasonRejected = "rejected"
	// otherEventName stands for event names without a mapper, so that arbitrary names sent
	// to an OTLP receiver cannot grow the drop metric without bound (the debug log has them).
	otherEventName = "_other"
)

type kestrelExporter struct {
	cfg       *Config
	logger    *zap.Logger
	mapper    *logmap.Mapper
	telemetry *metadata.TelemetryBuilder
	mirror    *mirror
	conn      cloudconn.Connection // set by start, before the first push

	stopMirror         context.CancelFunc
	mirrorDone         chan struct{}
	unsubscribe        func()
	unregisterSnapshot func()
}

func newExporter(cfg *Config, set exporter.Settings) (*kestrelExporter, error) {
	tb, err := metadata.NewTelemetryBuilder(set.TelemetrySettings)
	if err != nil {
		return nil, err
	}
	e := &kestrelExporter{
		cfg:       cfg,
		logger:    set.Logger,
		mapper:    logmap.NewMapper(nil),
		telemetry: tb,
	}
	e.mirror = newMirror(set.Logger, tb, cfg.InitialSnapshotTimeout, e.dropped)
	return e, nil
}

func (e *kestrelExporter) start(_ context.Context, host component.Host) error {
	ext, ok := host.GetExtensions()[e.cfg.Connection]
	if !ok {
		return fmt.Errorf("extension %q not found: configure it under extensions and list it in service::extensions", e.cfg.Connection)
	}
	p, ok := ext.(cloudconn.Provider)
	if !ok {
		return fmt.Errorf("extension %q (%T) does not provide a Kestrel Cloud connection: \"connection\" must name a kestrel_command extension", e.cfg.Connection, ext)
	}
	e.conn = p.Connection()
	e.unregisterSnapshot = e.conn.RegisterSnapshot(e.mirror.snapshot)
	ctx, cancel := context.WithCancel(context.Background())
	e.stopMirror, e.mirrorDone = cancel, make(chan struct{})
	go func() {
		defer close(e.mirrorDone)
		e.mirror.run(ctx, e.conn, e.cfg.TimeoutConfig.Timeout)
	}()
	e.unsubscribe = e.conn.Subscribe(e.mirror.stateChanged)
	return nil
}

func (e *kestrelExporter) shutdown(context.Context) error {
	if e.stopMirror != nil {
		e.unregisterSnapshot()
		e.unsubscribe()
		e.stopMirror()
		<-e.mirrorDone
	}
	e.telemetry.Shutdown()
	return nil
}

// pushLogs sends the payloads in record order and returns once the server has
// acknowledged them (at once with a server that does not acknowledge), so that a batch
// leaves the queue only when delivered. On a failure it returns the records behind the
// first payload that was not sent or not acknowledged, and all later ones, for the retry.
func (e *kestrelExporter) pushLogs(ctx context.Context, ld plog.Logs) error {
	res := e.mapper.Map(ld)
	reportDrops(ctx, e.logger, e.dropped, res.Drops)
	type written struct {
		item int
		ack  cloudconn.Acknowledgement
	}
	acks := make([]written, 0, len(res.Items))
	failed, sendErr := len(res.Items), error(nil)
	for i, it := range res.Items {
		ack, err := e.conn.SendAcknowledged(ctx, it.Payload)
		if err == nil {
			acks = append(acks, written{i, ack})
			continue
		}
		// The connection answers InvalidArgument for a message no stream can carry; that
		// will not change on retry, so the records are dropped and the rest still sent.
		if status.Code(err) == codes.InvalidArgument {
			e.dropped(ctx, it.EventName, reasonRejected, it.Records)
			e.logger.Debug("Dropped log records whose message the connection rejected",
				zap.String("event_name", it.EventName),
				zap.Int("records", it.Records),
				zap.Error(err))
			continue
		}
		failed, sendErr = i, fmt.Errorf("sending %s: %w", it.Payload.ProtoReflect().Descriptor().FullName(), err)
		break
	}
	// Acknowledgements are cumulative per stream, so most of these return at once. Once one
	// fails, the rest are given up (a wait with an ended context), since they are re-sent.
	giveUp, cancel := context.WithCancel(ctx)
	cancel()
	for _, w := range acks {
		if w.item >= failed {
			_ = w.ack(giveUp)
			continue
		}
		if err := w.ack(ctx); err != nil {
			failed, sendErr = w.item, fmt.Errorf("%s: %w", res.Items[w.item].Payload.ProtoReflect().Descriptor().FullName(), err)
		}
	}
	if sendErr != nil {
		return consumererror.NewLogs(sendErr, res.Unsent(ld, failed))
	}
	return nil
}

func (e *kestrelExporter) dropped(ctx context.Context, eventName, reason string, n int) {
	if !logmap.Known(eventName) {
		eventName = otherEventName
	}
	e.telemetry.KestrelExporterRecordsDropped.Add(ctx, int64(n), metric.WithAttributes(
		attribute.String("event_name", eventName),
		attribute.String("reason", reason),
	))
}

// reportDrops counts, through dropped, and logs the records that Map dropped.
func reportDrops(ctx context.Context, logger *zap.Logger, dropped func(context.Context, string, string, int), drops []logmap.Drop) {
	for _, d := range drops {
		dropped(ctx, d.EventName, string(d.Reason), d.Count)
		logger.Debug("Dropped log records that map to no cloud.v1 message",
			zap.String("event_name", d.EventName),
			zap.String("reason", string(d.Reason)),
			zap.String("attribute", d.Detail),
			zap.Int("records", d.Count))
	}
}
