package kubeenv

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// stopGrace is how long a process gets to exit after SIGTERM before its group is killed.
// Short, because kube-apiserver's graceful shutdown waits for clients' open watches to
// end, and nothing in these environments needs a clean shutdown: etcd runs without fsync
// and Start discards old data anyway.
const stopGrace = 3 * time.Second

// proc is one running server process in its own process group, so that stopping it also
// stops anything it spawned.
type proc struct {
	name    string
	logPath string
	cmd     *exec.Cmd
	done    chan struct{} // closed when the process has exited and been reaped
	waitErr error         // valid once done is closed
}

// startProc starts bin with args, output appended to dir/<name>.log. A detached process
// gets its own session and outlives us; otherwise the kernel kills it if we die, so a
// crashed test binary leaves no servers behind.
func startProc(dir, name, bin string, args []string, detach bool) (*proc, error) {
	logPath := filepath.Join(dir, name+".log")
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600) //nolint:gosec // in the environment's own directory
	if err != nil {
		return nil, err
	}
	defer logFile.Close() // the child has its own copy of the descriptor
	fmt.Fprintf(logFile, "==== %s kubeenv: starting %s %s\n", time.Now().Format(time.RFC3339Nano), bin, strings.Join(args, " "))

	cmd := exec.Command(bin, args...) //nolint:gosec // a binary kubeenv built, with arguments this package builds
	cmd.Dir = dir
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	if detach {
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	} else {
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("kubeenv: starting %s: %w", name, err)
	}
	p := &proc{name: name, logPath: logPath, cmd: cmd, done: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		close(p.done)
	}()
	if err := os.WriteFile(pidFile(dir, name), []byte(strconv.Itoa(cmd.Process.Pid)+"\n"), 0o600); err != nil {
		p.stop(0)
		return nil, err
	}
	return p, nil
}

// stop terminates the process group with SIGTERM, escalating to SIGKILL after grace (at
// once if grace is 0), and waits until the process is reaped.
func (p *proc) stop(grace time.Duration) {
	pgid := p.cmd.Process.Pid
	select {
	case <-p.done: // already gone (e.g. stopped by StopDir); its id may be reused by now
		_ = os.Remove(pidFile(filepath.Dir(p.logPath), p.name))
		return
	default:
	}
	if grace > 0 {
		_ = syscall.Kill(-pgid, syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(grace):
		}
	}
	select {
	case <-p.done:
		// Signalling the group now could hit an unrelated one that reuses the id.
	default:
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-p.done
	}
	_ = os.Remove(pidFile(filepath.Dir(p.logPath), p.name))
}

// exitError describes an unexpected exit with the end of the process's log, which is
// where the reason is.
func (p *proc) exitError() error {
	err := p.waitErr
	if err == nil {
		err = errors.New("exit status 0")
	}
	return fmt.Errorf("kubeenv: %s exited: %w\n--- last lines of %s ---\n%s", p.name, err, p.logPath, logTail(p.logPath, 25))
}

func logTail(path string, lines int) string {
	data, err := os.ReadFile(path) //nolint:gosec // a log file startProc writes
	if err != nil {
		return err.Error()
	}
	all := bytes.Split(bytes.TrimRight(data, "\n"), []byte("\n"))
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	return string(bytes.Join(all, []byte("\n")))
}

func pidFile(dir, name string) string { return filepath.Join(dir, name+".pid") }

// StopDir stops the processes of an environment started in dir by another process (see
// Options.Detach), using the pid files Start wrote there: the controller-manager first and
// etcd last, each with SIGTERM, then SIGKILL after a grace period. A pid whose process is
// gone or is no longer the expected binary is skipped, so a stale pid file never kills an
// unrelated process.
func StopDir(dir string) error {
	var errs []error
	for _, name := range []string{binControllerManager, binAPIServer, binEtcd} {
		pid, alive, err := livePid(dir, name)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if alive {
			if err := stopForeign(pid, name); err != nil {
				errs = append(errs, err)
				continue
			}
		}
		_ = os.Remove(pidFile(dir, name))
	}
	return errors.Join(errs...)
}

// livePid reads dir's pid file for name and tells whether that pid is still running name.
// No pid file is not an error.
func livePid(dir, name string) (pid int, alive bool, err error) {
	data, err := os.ReadFile(pidFile(dir, name))
	if errors.Is(err, os.ErrNotExist) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, err
	}
	pid, err = strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || pid <= 1 {
		return 0, false, fmt.Errorf("kubeenv: bad pid file %s", pidFile(dir, name))
	}
	return pid, isRunning(pid, name), nil
}

// isRunning tells whether pid is a live process executing a binary called name; a zombie
// or a reused pid is not.
func isRunning(pid int, name string) bool {
	exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
	return err == nil && filepath.Base(strings.TrimSuffix(exe, " (deleted)")) == name
}

// stopForeign stops a process that is not our child: we cannot wait for it, only watch
// for it to disappear. Detached processes lead their own session, so -pid is their group.
func stopForeign(pid int, name string) error {
	running := func() bool { return isRunning(pid, name) }
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL} {
		_ = syscall.Kill(-pid, sig)
		if waitGone(running, stopGrace) {
			return nil
		}
	}
	return fmt.Errorf("kubeenv: %s (pid %d) survives SIGKILL", name, pid)
}

// waitGone polls, since a non-child's exit cannot be waited for.
func waitGone(running func() bool, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for running() {
		if time.Now().After(deadline) {
			return false
		}
		<-tick.C
	}
	return true
}
