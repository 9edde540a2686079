// Package audit is the audit trail of the cloud's tools: every call, allowed or refused,
// becomes one structured record that is logged, counted, and emitted into the collector's
// logs pipeline (see internal/schema for its attributes).
package audit // import "github.com/kestrelai/otelcol-kestrel/receiver/kestreltoolsreceiver/internal/audit"

import (
	"context"
	"fmt"
	"sync"
	"time"

	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.uber.org/zap"

	"github.com/kestrelai/otelcol-kestrel/internal/schema"
)

// Outcomes of a call.
const (
	OK        = "ok"
	Error     = "error"
	Refused   = "refused"
	Busy      = "busy"
	Timeout   = "timeout"
	Truncated = "truncated"
)

// maxInput bounds the command or path kept in a record: a hostile 1 MiB command is
// audited by its start and its length.
const maxInput = 4 << 10

// Record is one audited call.
type Record struct {
	RequestID string
	Tool      string
	// Input is the API path or the command string.
	Input    string
	Identity string
	Outcome  string
	// Reason says why a call was refused or failed.
	Reason string
	// StatusCode is the HTTP status of an API read (0: none).
	StatusCode int
	// ExitCode is a command's exit code; HasExitCode says whether there is one.
	ExitCode    int
	HasExitCode bool
	Bytes       int
	Duration    time.Duration
}

// Counter counts records by tool and outcome (the component's self-metric).
type Counter func(ctx context.Context, tool, outcome string)

// queueSize bounds the records waiting for the logs pipeline; beyond it they are dropped
// from the pipeline (still logged and counted), so a slow pipeline never holds up a tool.
const queueSize = 4096

// Trail writes records to the log, the counter and, when next is set, the logs pipeline.
type Trail struct {
	logger  *zap.Logger
	count   Counter
	dropped Counter
	next    consumer.Logs

	queue chan Record
	wg    sync.WaitGroup
}

// New returns a trail. next may be nil (records are logged and counted only); dropped
// counts records the pipeline could not take.
func New(logger *zap.Logger, count, dropped Counter, next consumer.Logs) *Trail {
	t := &Trail{logger: logger, count: count, dropped: dropped, next: next}
	if next != nil {
		t.queue = make(chan Record, queueSize)
		t.wg.Add(1)
		go t.emit()
	}
	return t
}

// Add audits one call.
func (t *Trail) Add(ctx context.Context, r Record) {
	if len(r.Input) > maxInput {
		r.Input = fmt.Sprintf("%s… (%d bytes)", r.Input[:maxInput], len(r.Input))
	}
	fields := []zap.Field{
		zap.String("request_id", r.RequestID), zap.String("tool", r.Tool), zap.String("input", r.Input),
		zap.String("identity", r.Identity), zap.String("outcome", r.Outcome),
		zap.Int("bytes", r.Bytes), zap.Duration("duration", r.Duration),
	}
	if r.StatusCode != 0 {
		fields = append(fields, zap.Int("status_code", r.StatusCode))
	}
	if r.HasExitCode {
		fields = append(fields, zap.Int("exit_code", r.ExitCode))
	}
	if r.Reason != "" {
		fields = append(fields, zap.String("reason", r.Reason))
	}
	t.logger.Info("Kestrel Cloud tool call", fields...)
	t.count(ctx, r.Tool, r.Outcome)
	if t.queue == nil {
		return
	}
	select {
	case t.queue <- r:
	default:
		t.dropped(ctx, r.Tool, r.Outcome)
	}
}

// Close emits what is queued and stops.
func (t *Trail) Close() {
	if t.queue != nil {
		close(t.queue)
		t.wg.Wait()
	}
}

// emit sends queued records to the pipeline, as many per call as have arrived.
func (t *Trail) emit() {
	defer t.wg.Done()
	for r := range t.queue {
		logs := plog.NewLogs()
		sl := logs.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty()
		sl.Scope().SetName("github.com/kestrelai/otelcol-kestrel/receiver/kestreltoolsreceiver")
		put(sl.LogRecords().AppendEmpty(), r)
	more:
		for range 1000 {
			select {
			case r, ok := <-t.queue:
				if !ok {
					break more
				}
				put(sl.LogRecords().AppendEmpty(), r)
			default:
				break more
			}
		}
		if err := t.next.ConsumeLogs(context.Background(), logs); err != nil {
			t.logger.Warn("The logs pipeline refused audit records", zap.Int("records", logs.LogRecordCount()), zap.Error(err))
		}
	}
}

func put(lr plog.LogRecord, r Record) {
	now := pcommon.NewTimestampFromTime(time.Now())
	lr.SetTimestamp(now)
	lr.SetObservedTimestamp(now)
	lr.SetEventName(schema.EventToolAudit)
	lr.SetSeverityNumber(plog.SeverityNumberInfo)
	lr.SetSeverityText("INFO")
	if r.Outcome == Refused || r.Outcome == Error {
		lr.SetSeverityNumber(plog.SeverityNumberWarn)
		lr.SetSeverityText("WARN")
	}
	lr.Body().SetStr(fmt.Sprintf("%s %s: %s", r.Tool, r.Outcome, r.Input))
	a := lr.Attributes()
	a.PutStr(schema.AttrToolName, r.Tool)
	a.PutStr(schema.AttrToolRequestID, r.RequestID)
	a.PutStr(schema.AttrToolInput, r.Input)
	a.PutStr(schema.AttrToolIdentity, r.Identity)
	a.PutStr(schema.AttrToolOutcome, r.Outcome)
	if r.Reason != "" {
		a.PutStr(schema.AttrToolReason, r.Reason)
	}
	if r.StatusCode != 0 {
		a.PutInt(schema.AttrHTTPResponseStatusCode, int64(r.StatusCode))
	}
	if r.HasExitCode {
		a.PutInt(schema.AttrProcessExitCode, int64(r.ExitCode))
	}
	a.PutInt(schema.AttrToolResponseBytes, int64(r.Bytes))
	a.PutDouble(schema.AttrToolDuration, r.Duration.Seconds())
}
