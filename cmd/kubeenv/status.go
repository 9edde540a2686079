package main

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"

	"k8s.io/client-go/discovery"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/kestrelai/otelcol-kestrel/internal/kubeenv"
)

// optionalProcess may be absent (up --no-controller-manager); a pid file whose process
// is gone still counts as a failure, since that means it crashed.
const optionalProcess = "kube-controller-manager"

// status prints the state of each process started in dir and fails unless etcd and the
// apiserver run, nothing that was started has exited, and the apiserver's /readyz (which
// includes its etcd check) answers ok through dir's kubeconfig.
func status(ctx context.Context, dir string, out io.Writer) error {
	states, err := kubeenv.DirState(dir)
	if err != nil {
		return err
	}
	var problems []string
	started := false
	for _, s := range states {
		switch {
		case s.Running:
			started = true
			fmt.Fprintf(out, "%-24s running (pid %d)\n", s.Name, s.PID)
		case s.PID != 0:
			started = true
			fmt.Fprintf(out, "%-24s exited (pid %d)\n", s.Name, s.PID)
			problems = append(problems, s.Name+" exited")
		default:
			fmt.Fprintf(out, "%-24s not started\n", s.Name)
			if s.Name != optionalProcess {
				problems = append(problems, s.Name+" not started")
			}
		}
	}
	if !started {
		return fmt.Errorf("kubeenv: no environment runs in %s", dir)
	}
	if len(problems) > 0 {
		return fmt.Errorf("kubeenv: environment in %s is not healthy: %s", dir, strings.Join(problems, ", "))
	}
	host, err := ready(ctx, filepath.Join(dir, "kubeconfig"))
	if err != nil {
		return fmt.Errorf("kubeenv: environment in %s is not healthy: %w", dir, err)
	}
	fmt.Fprintf(out, "%-24s %s ready\n", "apiserver", host)
	return nil
}

// ready asks the apiserver of kubeconfig for /readyz and returns its URL.
func ready(ctx context.Context, kubeconfig string) (string, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return "", err
	}
	cfg.Timeout = 5 * time.Second
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return "", err
	}
	// A non-2xx answer is an error, with the failing checks in its message.
	if _, err := dc.RESTClient().Get().AbsPath("/readyz").DoRaw(ctx); err != nil {
		return "", fmt.Errorf("%s/readyz: %w", cfg.Host, err)
	}
	return cfg.Host, nil
}
