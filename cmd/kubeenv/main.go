// Command kubeenv builds and runs a real etcd + kube-apiserver + kube-controller-manager on
// loopback, for trying the collector against Kubernetes and for CI.
//
//	kubeenv build                        build the binaries once per machine; print their dir
//	kubeenv up --dir DIR [--detach]      start; print "export KUBECONFIG=DIR/kubeconfig"
//	kubeenv down --dir DIR               stop an environment started with --detach
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/kestrelai/otelcol-kestrel/internal/kubeenv"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

const usage = `usage:
  kubeenv build                                   build etcd, kube-apiserver and kube-controller-manager (cached); print their directory
  kubeenv up --dir DIR [--detach] [--no-controller-manager] [--ready-timeout D]
                                                  start on loopback, write DIR/kubeconfig; run until SIGINT/SIGTERM,
                                                  or with --detach leave the processes running and return
  kubeenv down --dir DIR                          stop what "up --detach" started in DIR
`

func run(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("kubeenv: missing command")
	}
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()

	fs := flag.NewFlagSet("kubeenv "+args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, usage) }
	dir := fs.String("dir", "", "directory for the environment's credentials, data, logs, pid files and kubeconfig")
	detach := fs.Bool("detach", false, "up: leave the processes running (stop them with kubeenv down)")
	noKCM := fs.Bool("no-controller-manager", false, "up: run only etcd and kube-apiserver")
	readyTimeout := fs.Duration("ready-timeout", time.Minute, "up: how long each process may take to become ready")
	if err := fs.Parse(args[1:]); errors.Is(err, flag.ErrHelp) {
		return nil
	} else if err != nil {
		return fmt.Errorf("kubeenv: %w", err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("kubeenv: unexpected arguments: %v", fs.Args())
	}

	switch args[0] {
	case "build":
		assets, err := kubeenv.EnsureBinaries(ctx, stderr)
		if err != nil {
			return err
		}
		fmt.Fprintln(stdout, assets)
		return nil
	case "up":
		if *dir == "" {
			return errors.New("kubeenv: up needs --dir")
		}
		return up(ctx, kubeenv.Options{Dir: *dir, BuildLog: stderr, NoControllerManager: *noKCM, ReadyTimeout: *readyTimeout, Detach: *detach}, stdout, stderr)
	case "down":
		if *dir == "" {
			return errors.New("kubeenv: down needs --dir")
		}
		return kubeenv.StopDir(*dir)
	default:
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("kubeenv: unknown command %q", args[0])
	}
}

func up(ctx context.Context, opts kubeenv.Options, stdout, stderr io.Writer) error {
	start := time.Now()
	env, err := kubeenv.Start(ctx, opts)
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "kubeenv: %s ready in %v; logs in %s\n", env.Host(), time.Since(start).Round(time.Millisecond), env.Dir())
	fmt.Fprintf(stdout, "export KUBECONFIG=%s\n", env.Kubeconfig())
	if opts.Detach {
		fmt.Fprintf(stderr, "kubeenv: stop it with: kubeenv down --dir %s\n", env.Dir())
		return nil
	}
	<-ctx.Done()
	fmt.Fprintln(stderr, "kubeenv: stopping")
	env.Stop()
	return nil
}
