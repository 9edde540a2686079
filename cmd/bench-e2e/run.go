package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// result is one run of one scenario.
type result struct {
	scenario   string
	run        int
	load       time.Duration // how long the load ran
	sent       int64
	delivered  int64
	cpu        time.Duration    // collector CPU time (user + system) from the start of the load until it settled
	peakRSS    int64            // bytes, VmHWM when the collector settled
	reconnects int64            // -1: not applicable
	inv        *inventoryResult // inventory scenarios only
	err        error
}

type options struct {
	bin      string
	agentBin string // for the scenarios with agent set
	dir      string // runs' directories go here
	short    bool
	profile  string // directory for pprof profiles; "" = none
	env      []string
	log      func(format string, args ...any) // progress notes to stderr
	// baseline: these runs are of -baseline-bin.
	baseline bool
}

// slug names a scenario's files.
func slug(name string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(name) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
			dash = false
		} else if !dash && b.Len() > 0 {
			b.WriteByte('-')
			dash = true
		}
	}
	return strings.TrimSuffix(b.String(), "-")
}

func runScenario(ctx context.Context, opts options, sc *scenario, run int) result {
	if sc.inventoryPods > 0 {
		return runInventory(ctx, opts, sc, run, opts.log)
	}
	res := result{scenario: sc.name, run: run, reconnects: -1}
	name := fmt.Sprintf("%s-%d", slug(sc.name), run)
	bin, profiling := opts.bin, opts.profile != ""
	if sc.agent && !profiling {
		bin = opts.agentBin
	}
	// The agent has no pprof extension: profiled, an agent scenario runs its pipeline in the
	// full binary, which has every component the agent has (components_test.go), so the heap
	// is the agent's but the RSS is not.
	e, err := newEnv(filepath.Join(opts.dir, name), bin, profiling, uint64(run)) //nolint:gosec // run counts from 1
	if err != nil {
		res.err = err
		return res
	}
	defer e.close()
	e.agentBin = opts.agentBin
	l := sc.newLoad()
	defer l.close()
	cfg := e.newConfig(sc.cloud)
	cfg.Env = append(slices.Clone(sc.env), opts.env...)
	if err := l.configure(ctx, e, cfg); err != nil {
		res.err = err
		return res
	}
	col, err := startCollector(ctx, e, cfg, "otelcol")
	if err != nil {
		res.err = err
		return res
	}
	stopped := false
	defer func() {
		if !stopped {
			col.Kill()
		}
	}()
	if err := l.ready(ctx, e); err != nil {
		res.err = fmt.Errorf("%w (log: %s)", err, col.Log)
		return res
	}
	d := sc.duration
	if opts.short {
		d = sc.short
	}
	before, err := col.proc.read()
	if err != nil {
		res.err = err
		return res
	}
	loadCtx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	profiled := make(chan error, 1)
	// The heap is watched until the collector has settled: some peaks (windows that reach
	// the collector late) come after the load.
	profCtx, stopProfile := context.WithCancel(ctx)
	defer stopProfile()
	if profiling {
		go func() { profiled <- profile(profCtx, e, col.proc, d, filepath.Join(opts.profile, name)) }()
	} else {
		profiled <- nil
	}
	start := time.Now()
	res.sent, err = l.run(loadCtx, e)
	res.load = time.Since(start)
	cancel()
	var errs []error
	if err != nil {
		errs = append(errs, fmt.Errorf("load: %w", err))
	}
	if err := l.settle(ctx, e, res.sent); err != nil {
		errs = append(errs, fmt.Errorf("settle: %w", err))
	}
	after, err := col.proc.read()
	if err != nil {
		errs = append(errs, err)
	}
	stopProfile()
	res.cpu, res.peakRSS = after.CPU-before.CPU, after.PeakRSS
	if err := <-profiled; err != nil {
		errs = append(errs, fmt.Errorf("profile: %w", err))
	}
	stopped = true
	if err := col.Stop(time.Minute); err != nil {
		errs = append(errs, fmt.Errorf("stop: %w (log: %s)", err, col.Log))
	}
	if res.delivered, err = l.delivered(ctx, e); err != nil {
		errs = append(errs, err)
	}
	res.reconnects = l.reconnects()
	res.err = errors.Join(errs...)
	return res
}

// profile saves, from the collector's pprof extension, a CPU profile of most of the load, heap
// profiles after a GC (what is live) in its middle and once the collector settled, and a heap
// profile (as of the last GC, without forcing one) each time the RSS reaches a new high, so
// the last of those shows what the heap held at the peak.
func profile(ctx context.Context, e *env, proc *procReader, d time.Duration, prefix string) error {
	secs := max(int((d-4*time.Second)/time.Second), 1)
	cpu := make(chan error, 1)
	go func() {
		cpu <- fetch(context.WithoutCancel(ctx), e.pprofAddr, fmt.Sprintf("/debug/pprof/profile?seconds=%d", secs), prefix+".cpu.pprof")
	}()
	var errs []error
	mid := time.After(d / 2)
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	var high int64
	for ctx.Err() == nil {
		select {
		case <-ctx.Done():
		case <-mid:
			errs = append(errs, fetch(ctx, e.pprofAddr, "/debug/pprof/heap?gc=1", prefix+".heap-mid.pprof"))
		case <-tick.C:
			if u, err := proc.read(); err == nil && u.RSS > high+4<<20 {
				high = u.RSS
				errs = append(errs, fetch(ctx, e.pprofAddr, "/debug/pprof/heap", prefix+".heap-peak.pprof"))
			}
		}
	}
	errs = append(errs, fetch(context.WithoutCancel(ctx), e.pprofAddr, "/debug/pprof/heap?gc=1", prefix+".heap-end.pprof"), <-cpu)
	return errors.Join(errs...)
}

func fetch(ctx context.Context, addr, path, file string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+path, http.NoBody)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", path, resp.Status)
	}
	f, err := os.Create(file) //nolint:gosec // the profile directory from the command line
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
