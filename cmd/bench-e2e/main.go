// Command bench-e2e measures the built otelcol-kestrel as a separate process, as a user runs
// it, under load from real peers: a Hubble Relay serving Cilium's observer API that streams
// synthetic flows, Envoy sidecars sending access logs over ALS (go-control-plane clients),
// and an OTLP sender (pdata's OTLP/gRPC client). The reference cloud (devcloud) runs in this
// process over mTLS and counts what arrives. For each scenario of the table in scenarios.go
// it reports the collector's CPU time per 100k items (utime + stime from /proc/<pid>/stat),
// its peak RSS (VmHWM from /proc/<pid>/status) and the items delivered against those sent,
// with the plain otlp → otlp pipeline of the same binary as the same-run baseline of the OTLP
// path. The inventory scenarios (inventory.go) run it against a real kube-apiserver instead,
// with a bare client-go pod informer and pod watch (floor.go, this binary run as
// "informer-floor") as their same-run floor. `make bench-e2e` runs it; docs/benchmarks.md
// explains the figures.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	var err error
	if len(os.Args) > 1 && os.Args[1] == floorCommand {
		err = runFloorProcess(ctx, os.Args[2:])
	} else {
		err = run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	}
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench-e2e:", err)
		os.Exit(1)
	}
}

type envFlags []string

func (e *envFlags) String() string { return strings.Join(*e, " ") }
func (e *envFlags) Set(v string) error {
	if !strings.Contains(v, "=") {
		return fmt.Errorf("want NAME=VALUE, got %q", v)
	}
	*e = append(*e, v)
	return nil
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench-e2e", flag.ContinueOnError)
	fs.SetOutput(stderr)
	bin := fs.String("bin", "bin/otelcol-kestrel", "the collector binary (make build)")
	baseBin := fs.String("baseline-bin", "", "another build of the collector (e.g. of main) that the inventory scenarios also run, against the same cluster right before -bin, as their same-run baseline")
	agentBin := fs.String("agent-bin", "bin/otelcol-kestrel-agent", "the flow agents' binary (make build), for the relay agent and node agent scenarios")
	pattern := fs.String("run", "", "run only the scenarios whose name matches this regular expression")
	count := fs.Int("count", 2, "runs of every scenario (the table is run this many times, one scenario after the other)")
	short := fs.Bool("short", false, "shorter loads (20 s instead of 60 s) for a quick check")
	out := fs.String("out", "", "also write the report to this file")
	dir := fs.String("dir", ".run/bench-e2e", "where each run's configuration, logs and certificates go")
	prof := fs.Bool("profile", false, "run the collector with the pprof extension and save CPU and heap profiles of every run next to its logs (profiling costs CPU: do not compare these figures; agent scenarios then run their pipeline in -bin, which has the pprof extension)")
	list := fs.Bool("list", false, "list the scenarios and exit")
	var extraEnv envFlags
	fs.Var(&extraEnv, "env", "NAME=VALUE added to the collector's environment, e.g. -env GOMEMLIMIT=64MiB (repeatable)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	re, err := regexp.Compile(*pattern)
	if err != nil {
		return err
	}
	var selected []*scenario
	for i := range scenarios {
		if re.MatchString(scenarios[i].name) {
			selected = append(selected, &scenarios[i])
		}
	}
	if *list {
		for _, sc := range selected {
			fmt.Fprintf(stdout, "%s\t%v (short %v)\n", sc.name, sc.duration, sc.short)
		}
		return nil
	}
	if len(selected) == 0 {
		return fmt.Errorf("no scenario matches %q", *pattern)
	}
	// Both binaries: the relay-mode collector's scenario runs the agent as a peer.
	for _, b := range []string{*bin, *agentBin} {
		if _, err := os.Stat(b); err != nil {
			return fmt.Errorf("%w: build it with make build", err)
		}
	}
	root, err := filepath.Abs(filepath.Join(*dir, time.Now().UTC().Format("20060102T150405Z")))
	if err != nil {
		return err
	}
	opts := options{bin: *bin, agentBin: *agentBin, dir: root, short: *short, env: extraEnv, log: func(format string, args ...any) {
		fmt.Fprintf(stderr, "bench-e2e: "+format+"\n", args...)
	}}
	defer stopClusters()
	if *prof {
		opts.profile = root
	}
	h := header{
		command:   "bench-e2e " + strings.Join(args, " "),
		date:      time.Now().UTC().Format(time.RFC3339),
		commit:    gitCommit(),
		goVer:     runtime.Version(),
		cpus:      runtime.NumCPU(),
		cpuModel:  cpuModel(),
		loadStart: loadAvg(),
		short:     *short,
	}
	fmt.Fprintf(stderr, "bench-e2e: %d scenarios × %d runs; load average %s; runs in %s\n", len(selected), *count, h.loadStart, root)
	var results []result
	for run := 1; run <= *count; run++ {
		for _, sc := range selected {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			fmt.Fprintf(stderr, "  run %d: %s ... ", run, sc.name)
			if *baseBin != "" && sc.inventoryPods > 0 {
				base := opts
				base.bin, base.baseline = *baseBin, true
				r := runScenario(ctx, base, sc, run)
				r.scenario += baselineSuffix
				results = append(results, r)
				fmt.Fprintf(stderr, "baseline: %s\n  run %d: %s ... ", r.inv.summary(r.peakRSS), run, sc.name)
			}
			r := runScenario(ctx, opts, sc, run)
			results = append(results, r)
			if r.inv != nil {
				fmt.Fprintf(stderr, "%s", r.inv.summary(r.peakRSS))
			} else {
				per, _ := r.perHundredK()
				fmt.Fprintf(stderr, "sent %d, delivered %d, %.2f CPU-s (%.3f per 100k), peak RSS %.1f MiB", r.sent, r.delivered, r.cpu.Seconds(), per, mib(r.peakRSS))
			}
			if r.err != nil {
				fmt.Fprintf(stderr, ", error: %v", r.err)
			}
			fmt.Fprintln(stderr)
		}
	}
	h.loadEnd = loadAvg()
	w := stdout
	if *out != "" {
		f, err := os.Create(*out)
		if err != nil {
			return err
		}
		defer f.Close()
		w = io.MultiWriter(stdout, f)
	}
	writeReport(w, h, selected, results)
	for _, r := range results {
		if r.err != nil {
			return fmt.Errorf("%d of %d runs failed (see the table)", countFailed(results), len(results))
		}
	}
	return nil
}

func countFailed(results []result) int {
	n := 0
	for _, r := range results {
		if r.err != nil {
			n++
		}
	}
	return n
}

func gitCommit() string {
	out, err := exec.Command("git", "rev-parse", "--short", "HEAD").Output()
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(out))
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], ", ")
}

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown"
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}
