package faulttest

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"syscall"
	"time"
)

// Process is a built binary (otelcol-kestrel, kestrel-devcloud) running as a child process,
// its output appended to a log file.
type Process struct {
	cmd    *exec.Cmd
	exited chan struct{}
	err    error
	Log    string
}

// Start starts bin with args, appending its output to logPath.
func Start(bin, logPath string, args ...string) (*Process, error) {
	return StartCmd(exec.Command(bin, args...), logPath) //nolint:gosec // the binary under test
}

// StartCmd starts cmd, whose environment and the like the caller set, appending its output
// to logPath.
func StartCmd(cmd *exec.Cmd, logPath string) (*Process, error) {
	logFile, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600) //nolint:gosec // the caller's own directory
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, err
	}
	p := &Process{cmd: cmd, exited: make(chan struct{}), Log: logPath}
	go func() {
		p.err = cmd.Wait()
		logFile.Close()
		close(p.exited)
	}()
	return p, nil
}

// Pid is the process's id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// WaitHTTP returns once GET url answers 200 (a health check, an admin API), or fails when
// the process exits or ctx ends first.
func (p *Process) WaitHTTP(ctx context.Context, url string) error {
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, http.NoBody)
		if err != nil {
			return err
		}
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-p.exited:
			return fmt.Errorf("exited while starting: %w (log: %s)", p.err, p.Log)
		case <-ctx.Done():
			return fmt.Errorf("%s did not answer: %w (log: %s)", url, ctx.Err(), p.Log)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Kill sends SIGKILL and waits for the exit: no shutdown code runs.
func (p *Process) Kill() {
	_ = p.cmd.Process.Kill()
	<-p.exited
}

// Stop sends SIGTERM and waits up to timeout, then kills.
func (p *Process) Stop(timeout time.Duration) error {
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return err
	}
	select {
	case <-p.exited:
		return p.err
	case <-time.After(timeout):
		p.Kill()
		return fmt.Errorf("did not stop within %v; killed (log: %s)", timeout, p.Log)
	}
}
