package kestrelcommand // import "github.com/kestrelai/otelcol-kestrel/extension/kestrelcommand"

import (
	"context"
	"fmt"
	"os"
	"sync"
	"time"

	"go.uber.org/zap"
	"google.golang.org/protobuf/types/known/timestamppb"

	cloudv1 "github.com/kestrelai/otelcol-kestrel/api/cloud/v1"
	"github.com/kestrelai/otelcol-kestrel/internal/cloudconn"
	"github.com/kestrelai/otelcol-kestrel/internal/selflog"
)

// selfLogBatch is the most entries one PodLogs carries (as the original operator).
const selfLogBatch = 100

// selfLogs sends the collector's own warnings and errors, captured by the distribution's
// telemetry factory into buf, as PodLogs of the collector's pod while the connection is
// Ready. What the buffer's limiter refused since the last batch is reported in one
// summary entry of the next batch.
type selfLogs struct {
	e   *kestrelCommand
	buf *selflog.Buffer
	cfg SelfLogsConfig

	mu       sync.Mutex // one flush at a time (the loop and Shutdown's last flush)
	reported int64      // buf.Dropped() already reported
	line     int64      // entries sent, for LogEntry.line_number
}

func newSelfLogs(e *kestrelCommand, buf *selflog.Buffer) *selfLogs {
	cfg := e.cfg.SelfLogs
	if cfg.PodName == "" {
		// A pod's host name is its name.
		cfg.PodName, _ = os.Hostname()
	}
	buf.SetLimits(cfg.RatePerSecond, cfg.Burst, cfg.MaxBuffered)
	return &selfLogs{e: e, buf: buf, cfg: cfg}
}

// run flushes every flush_interval, and at once when a full batch is waiting.
func (sl *selfLogs) run(ctx context.Context) {
	tick := time.NewTicker(sl.cfg.FlushInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-sl.buf.Ready():
			if sl.buf.Len() < selfLogBatch {
				continue
			}
		}
		sl.flush(ctx)
	}
}

// flush sends what is buffered in batches until the buffer is empty or a send fails
// (the entries stay for the next flush). Like the original operator, nothing goes before
// the connection is Ready (the inventory committed).
func (sl *selfLogs) flush(ctx context.Context) {
	sl.mu.Lock()
	defer sl.mu.Unlock()
	for ctx.Err() == nil && sl.e.State() == cloudconn.Ready {
		batch := sl.buf.Peek(selfLogBatch)
		dropped := sl.buf.Dropped() - sl.reported
		if len(batch) == 0 && dropped == 0 {
			return
		}
		msg := sl.podLogs(batch, dropped, time.Now())
		sendCtx, cancel := context.WithTimeout(ctx, sl.cfg.FlushInterval)
		err := sl.e.Send(sendCtx, msg)
		cancel()
		if err != nil {
			// Debug: a warning here would be captured and retried with the next batch.
			sl.e.logger.Debug("Self-log entries not sent; kept for the next flush", zap.Int("entries", len(batch)), zap.Error(err))
			return
		}
		sl.buf.Discard(len(batch))
		sl.line += int64(len(batch))
		sl.reported += dropped
		sl.e.tb.KestrelCommandSelfLogsSent.Add(context.Background(), int64(len(batch)))
		if dropped > 0 {
			sl.e.tb.KestrelCommandSelfLogsDropped.Add(context.Background(), dropped)
			sl.e.logger.Info("Self-log entries over the self_logs limits were not sent to Kestrel Cloud", zap.Int64("dropped", dropped))
		}
		if len(batch) < selfLogBatch {
			return
		}
	}
}

func (sl *selfLogs) podLogs(batch []selflog.Entry, dropped int64, now time.Time) *cloudv1.PodLogs {
	entries := make([]*cloudv1.LogEntry, 0, len(batch)+1)
	for i, en := range batch {
		le := &cloudv1.LogEntry{
			Timestamp:  timestamppb.New(en.Time),
			Message:    en.Message,
			Level:      en.Level.CapitalString(),
			LineNumber: sl.line + int64(i) + 1,
		}
		if en.Error != "" || en.Stack != "" {
			le.ErrorInfo = &cloudv1.LogErrorInfo{ErrorMessage: en.Error, StackTrace: en.Stack}
		}
		entries = append(entries, le)
	}
	if dropped > 0 {
		entries = append(entries, &cloudv1.LogEntry{
			Timestamp: timestamppb.New(now),
			Level:     "WARN",
			Message: fmt.Sprintf("kestrel_command: %d warning and error log entries of this collector were not sent (self_logs limits: %g per second, burst %d, %d buffered)",
				dropped, sl.cfg.RatePerSecond, sl.cfg.Burst, sl.cfg.MaxBuffered),
		})
	}
	return &cloudv1.PodLogs{
		PodName:             sl.cfg.PodName,
		Namespace:           sl.cfg.Namespace,
		PodUid:              sl.cfg.PodUID,
		ContainerName:       sl.cfg.ContainerName,
		NodeName:            sl.cfg.NodeName,
		LogEntries:          entries,
		CollectionTimestamp: timestamppb.New(now),
		TotalLines:          int64(len(batch)),
		StreamOffset:        sl.line,
	}
}
