// Package shell answers ShellCommandRequest without a shell and without running any
// program: each command string is parsed (mvdan.cc/sh), checked against the allowlist of
// read-only kubectl and hubble commands, and run in-process by a Runner, with its output in
// bounded buffers and one deadline for the whole request.
package shell // import "github.com/kestrelai/otelcol-kestrel/receiver/kestreltoolsreceiver/internal/shell"

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	cloudv1 "github.com/kestrelai/otelcol-kestrel/api/cloud/v1"
	"github.com/kestrelai/otelcol-kestrel/receiver/kestreltoolsreceiver/internal/audit"
	"github.com/kestrelai/otelcol-kestrel/receiver/kestreltoolsreceiver/internal/outbuf"
)

// Name is the tool's name in the audit trail and the self-metrics.
const Name = "shell"

// Exit codes of commands this package did not run to completion, as a shell reports them.
const (
	ExitRefused = 126 // refused: not allowed, or shell syntax
	ExitTimeout = 124 // the request's deadline passed
)

// Runner runs one validated command of its program in-process and returns its exit code.
// It writes only to stdout and stderr and must return once ctx is done.
type Runner interface {
	Run(ctx context.Context, cmd Command, stdout, stderr io.Writer) int
}

// Config is the tool's part of the receiver's configuration.
type Config struct {
	// Allowed lists the "program verb" entries that may run (a subset of Verbs()).
	Allowed []string
	// DefaultTimeout applies when the request has no timeout_seconds.
	DefaultTimeout time.Duration
	// MaxTimeout caps timeout_seconds.
	MaxTimeout time.Duration
	// MaxCommandBytes bounds one command string.
	MaxCommandBytes int
	// MaxOutputBytes caps the stdout and stderr of all commands of one request together.
	MaxOutputBytes int
}

// Tool serves ShellCommandRequests.
type Tool struct {
	cfg      Config
	runners  map[string]Runner
	identity string
	trail    *audit.Trail
}

// New returns the tool; runners maps a program name ("kubectl", "hubble") to its runner.
func New(cfg Config, runners map[string]Runner, identity string, trail *audit.Trail) *Tool {
	return &Tool{cfg: cfg, runners: runners, identity: identity, trail: trail}
}

// stderrShare is the part of a command's output budget its stderr may use.
const stderrShare = 8

// Serve answers one request; budget is the most output (stdout and stderr of all
// commands) the answer may carry.
func (t *Tool) Serve(ctx context.Context, req *cloudv1.ShellCommandRequest, budget int) *cloudv1.ShellCommandResponse {
	resp := &cloudv1.ShellCommandResponse{RequestId: req.GetRequestId()}
	cmds := req.GetCommands()
	if len(cmds) == 0 {
		resp.GlobalErrorMessage = "no commands in the request"
		t.trail.Add(ctx, audit.Record{RequestID: req.GetRequestId(), Tool: Name, Identity: t.identity,
			Outcome: audit.Refused, Reason: resp.GlobalErrorMessage})
		return resp
	}
	timeout := t.cfg.DefaultTimeout
	if s := req.GetTimeoutSeconds(); s > 0 {
		timeout = min(time.Duration(s)*time.Second, t.cfg.MaxTimeout)
	}
	ctx, cancel := context.WithTimeoutCause(ctx, timeout, fmt.Errorf("%w: the request's deadline of %v passed", context.DeadlineExceeded, timeout))
	defer cancel()
	remaining := min(budget, t.cfg.MaxOutputBytes)
	for i, c := range cmds {
		start := time.Now()
		share := remaining / (len(cmds) - i)
		res, rec := t.run(ctx, c, share)
		remaining -= len(res.GetStdout()) + len(res.GetStderr())
		rec.RequestID, rec.Tool, rec.Input, rec.Identity = req.GetRequestId(), Name, c, t.identity
		rec.Duration, rec.Bytes = time.Since(start), len(res.GetStdout())+len(res.GetStderr())
		rec.ExitCode, rec.HasExitCode = int(res.GetExitCode()), true
		t.trail.Add(ctx, rec)
		resp.Results = append(resp.Results, res)
	}
	return resp
}

func (t *Tool) run(ctx context.Context, s string, limit int) (*cloudv1.ShellCommandResult, audit.Record) {
	res := &cloudv1.ShellCommandResult{Command: s}
	if len(s) > t.cfg.MaxCommandBytes {
		// Do not echo a huge command back: the cloud knows what it sent.
		res.Command = s[:min(len(s), 256)] + "…"
	}
	cmd, err := Parse(s, t.cfg.MaxCommandBytes, t.cfg.Allowed)
	if err != nil {
		res.ExitCode, res.Stderr = ExitRefused, err.Error()
		return res, audit.Record{Outcome: audit.Refused, Reason: err.Error()}
	}
	if ctx.Err() != nil {
		res.ExitCode, res.Stderr = ExitTimeout, "not run: "+context.Cause(ctx).Error()
		return res, audit.Record{Outcome: audit.Timeout, Reason: res.Stderr}
	}
	runner := t.runners[cmd.Program]
	if runner == nil {
		res.ExitCode, res.Stderr = ExitRefused, fmt.Sprintf("%s is not available in this collector", cmd.Program)
		return res, audit.Record{Outcome: audit.Refused, Reason: res.Stderr}
	}
	// stderr gets an eighth, at least 4 KiB for an error message, but never more than half:
	// with a small share, stdout must keep room too.
	errLimit := max(limit/stderrShare, min(limit/2, 4<<10))
	note := func(total int64) string {
		return fmt.Sprintf("\n[kestrel: output truncated at %d of %d bytes; narrow the command (-l, --field-selector, --tail, -o jsonpath=...)]", limit-errLimit, total)
	}
	cmdCtx, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	stdout := outbuf.New(max(limit-errLimit-len(note(1<<40)), 0), func() { stop(errOutputFull) })
	stderr := outbuf.New(errLimit, nil)
	code := runner.Run(cmdCtx, cmd, stdout, stderr)
	rec := audit.Record{Outcome: audit.OK}
	truncated := stdout.Truncated()
	if truncated {
		stdout.Note(note(stdout.Total()))
	}
	res.Stdout, res.Stderr = stdout.String(), stderr.String()
	switch {
	case truncated:
		rec.Outcome = audit.Truncated
		if errors.Is(context.Cause(cmdCtx), errOutputFull) && code != 0 {
			// Stopped by us because the output was full: what was kept is the answer.
			code = 0
		}
	case ctx.Err() != nil:
		code = ExitTimeout
		res.Stderr = strings.TrimSpace(res.Stderr + "\ntimed out: " + context.Cause(ctx).Error())
		rec.Outcome, rec.Reason = audit.Timeout, context.Cause(ctx).Error()
	case code != 0:
		rec.Outcome, rec.Reason = audit.Error, firstLine(res.Stderr)
	}
	res.ExitCode, res.Success = int32(code), code == 0
	return res, rec
}

var errOutputFull = errors.New("the output limit was reached")

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return s
}
