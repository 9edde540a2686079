package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/kestrelai/otelcol-kestrel/internal/testutil/faulttest"
)

// The floors: what any client-go based inventory pays for a pod update before doing anything
// with it. bench-e2e runs itself as each floor process (floorCommand), with its clients
// configured as k8scache configures them (protobuf, no gzip): a pod informer over the cluster
// whose handler only counts updates, and a bare pod watch that counts its events. Their CPU
// over the same pod label changes, in the same run, is the part of the collector's figure
// that no change to the collector's own code can remove.

// floorCommand is the first argument that makes bench-e2e a floor process.
const floorCommand = "informer-floor"

// runFloorProcess is the floor process. It writes how many updates it has seen to the file
// -count once it watches, and again whenever the count reaches a target read from stdin
// (one number a line): the harness asks for the end of each round instead of the process
// reporting as it goes, which would add its own wake-ups to the CPU it measures.
func runFloorProcess(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet(floorCommand, flag.ContinueOnError)
	kubeconfig := fs.String("kubeconfig", "", "the cluster")
	countFile := fs.String("count", "", "file to write the number of updates seen to")
	watchOnly := fs.Bool("watch-only", false, "watch pods without an informer: no list, no cache, no handlers")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", *kubeconfig)
	if err != nil {
		return err
	}
	cfg.DisableCompression = true
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	var updates, target atomic.Int64
	target.Store(-1)
	reached := make(chan struct{}, 1)
	count := func() {
		if updates.Add(1) == target.Load() {
			select {
			case reached <- struct{}{}:
			default:
			}
		}
	}
	if *watchOnly {
		list, err := cs.CoreV1().Pods("").List(ctx, metav1.ListOptions{Limit: 1})
		if err != nil {
			return err
		}
		w, err := cs.CoreV1().Pods("").Watch(ctx, metav1.ListOptions{ResourceVersion: list.ResourceVersion})
		if err != nil {
			return err
		}
		defer w.Stop()
		go func() {
			for ev := range w.ResultChan() {
				if ev.Type == watch.Modified {
					count()
				}
			}
		}()
	} else {
		inf := informers.NewSharedInformerFactory(cs, 0).Core().V1().Pods().Informer()
		if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
			UpdateFunc: func(_, _ any) { count() },
		}); err != nil {
			return err
		}
		go inf.RunWithContext(ctx)
		if !cache.WaitForCacheSync(ctx.Done(), inf.HasSynced) {
			return ctx.Err()
		}
	}
	write := func() error {
		if err := os.WriteFile(*countFile+".tmp", strconv.AppendInt(nil, updates.Load(), 10), 0o600); err != nil {
			return err
		}
		return os.Rename(*countFile+".tmp", *countFile)
	}
	go func() {
		in := bufio.NewScanner(os.Stdin)
		for in.Scan() {
			t, err := strconv.ParseInt(in.Text(), 10, 64)
			if err != nil {
				continue
			}
			target.Store(t)
			if updates.Load() >= t {
				select {
				case reached <- struct{}{}:
				default:
				}
			}
		}
	}()
	if err := write(); err != nil {
		return err
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-reached:
			if err := write(); err != nil {
				return err
			}
		}
	}
}

// floor is a floor process as the harness sees it.
type floor struct {
	*faulttest.Process
	proc      *procReader
	countFile string
	targets   io.Writer // the process's stdin
}

// floorResult is what one floor process measured.
type floorResult struct {
	name string
	// cpu is the process's CPU for each round of invUpdates pod label changes.
	cpu []time.Duration
	// peakRSS and anon are its peak RSS and its RssAnon at the end: the bench-e2e
	// executable is as large as the collector's, so RssAnon is what compares.
	peakRSS, anon int64
}

// floors are the processes measureFloors runs: their names and extra arguments.
var floors = []struct {
	name string
	args []string
}{
	{"client-go informer", nil},
	{"client-go watch", []string{"-watch-only"}},
}

// startFloor starts a floor process against cl and returns once it is watching.
func startFloor(ctx context.Context, dir, name string, cl *cluster, extra ...string) (*floor, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	countFile := filepath.Join(dir, name+".count")
	args := append([]string{floorCommand, "-kubeconfig", cl.env.Kubeconfig(), "-count", countFile}, extra...)
	cmd := exec.Command(self, args...) //nolint:gosec // this binary
	targets, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	p, err := faulttest.StartCmd(cmd, filepath.Join(dir, name+".log"))
	if err != nil {
		return nil, err
	}
	f := &floor{Process: p, countFile: countFile, targets: targets}
	if f.proc, err = newProcReader(p.Pid()); err != nil {
		p.Kill()
		return nil, err
	}
	wctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if err := f.waitUpdates(wctx, 0); err != nil {
		p.Kill()
		return nil, fmt.Errorf("%s did not start: %w (log: %s)", name, err, p.Log)
	}
	return f, nil
}

// updates is the number of pod updates the floor process had seen when it last wrote it;
// -1 before it started.
func (f *floor) updates() int64 {
	raw, err := os.ReadFile(f.countFile)
	if err != nil {
		return -1
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(raw)), 10, 64)
	if err != nil {
		return -1
	}
	return n
}

// expect asks the floor process to report its count once it has seen n updates
// (runFloorProcess); waitUpdates(n) then returns.
func (f *floor) expect(n int64) error {
	_, err := fmt.Fprintln(f.targets, n)
	return err
}

func (f *floor) waitUpdates(ctx context.Context, n int64) error {
	for f.updates() < n {
		select {
		case <-ctx.Done():
			return errors.New("timed out")
		case <-time.After(10 * time.Millisecond):
		}
	}
	return nil
}

// measureFloors runs each floor process in turn through rounds of pod label changes.
func measureFloors(ctx context.Context, dir string, cl *cluster, rounds int) ([]floorResult, error) {
	var out []floorResult
	for _, fl := range floors {
		r, err := measureFloor(ctx, dir, cl, rounds, fl.name, fl.args)
		if err != nil {
			return out, fmt.Errorf("%s: %w", fl.name, err)
		}
		out = append(out, r)
	}
	return out, nil
}

func measureFloor(ctx context.Context, dir string, cl *cluster, rounds int, name string, args []string) (floorResult, error) {
	res := floorResult{name: name}
	f, err := startFloor(ctx, dir, slug(name), cl, args...)
	if err != nil {
		return res, err
	}
	defer f.Kill()
	time.Sleep(2 * time.Second)
	for round := range rounds {
		before, err := f.proc.read()
		if err != nil {
			return res, err
		}
		want := f.updates() + invUpdates
		if err := f.expect(want); err != nil {
			return res, err
		}
		if err := cl.patchPods(ctx, round); err != nil {
			return res, err
		}
		wctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		waitErr := f.waitUpdates(wctx, want)
		cancel()
		after, err := f.proc.read()
		if err := errors.Join(waitErr, err); err != nil {
			return res, err
		}
		res.cpu = append(res.cpu, after.CPU-before.CPU)
	}
	u, err := f.proc.read()
	res.peakRSS, res.anon = u.PeakRSS, u.RSSAnon
	return res, err
}
