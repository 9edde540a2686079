package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	"go.uber.org/zap"

	"github.com/kestrelai/otelcol-kestrel/internal/cloudconn"
	"github.com/kestrelai/otelcol-kestrel/internal/devcloud"
)

// env is what one run of one scenario has: its directory, the binary, the reference cloud
// (in this process, over mTLS as in production) and the collector's local addresses.
type env struct {
	dir, bin, certs string
	agentBin        string // for loads that start a flow agent as a peer
	cloud           *devcloud.Server
	healthAddr      string
	metricsAddr     string
	pprofAddr       string // "" unless profiling
	seed            uint64
}

func newEnv(dir, bin string, profile bool, seed uint64) (*env, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	e := &env{dir: dir, bin: bin, certs: filepath.Join(dir, "certs"), seed: seed}
	if err := devcloud.GenerateCerts(e.certs, devcloud.CertOptions{}); err != nil {
		return nil, err
	}
	var err error
	for _, a := range []*string{&e.healthAddr, &e.metricsAddr} {
		if *a, err = freeAddr(); err != nil {
			return nil, err
		}
	}
	if profile {
		if e.pprofAddr, err = freeAddr(); err != nil {
			return nil, err
		}
	}
	if e.cloud, err = devcloud.New(devcloud.Config{CertsDir: e.certs}, zap.NewNop()); err != nil {
		return nil, err
	}
	if err := e.cloud.Start(); err != nil {
		return nil, err
	}
	return e, nil
}

func (e *env) close() { e.cloud.Kill() }

// freeAddr returns a loopback address that was free a moment ago.
func freeAddr() (string, error) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer lis.Close()
	return lis.Addr().String(), nil
}

// waitCloudReady returns once the collector's connection is Ready: its side streams open
// only after the first InventoryCommit.
func (e *env) waitCloudReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	err := e.cloud.WaitStatus(ctx, func(st devcloud.Status) bool {
		for _, op := range st.Operators {
			if op.Streams[cloudconn.StreamFlows].Open {
				return true
			}
		}
		return false
	})
	if err != nil {
		return fmt.Errorf("the collector's connection to the cloud did not become ready: %w", err)
	}
	return nil
}

// waitSelfMetric returns once the collector's self-metric name adds up to at least want.
func (e *env) waitSelfMetric(ctx context.Context, name string, want float64) error {
	var got float64
	err := waitFor(ctx, func() bool {
		m, err := scrape(ctx, e.metricsAddr)
		if err != nil {
			return false
		}
		got = m.sum(name)
		return got >= want
	})
	if err != nil {
		return fmt.Errorf("%s is %v of %v: %w", name, got, want, err)
	}
	return nil
}

// waitFor polls cond until it holds, for at most settleTimeout.
func waitFor(ctx context.Context, cond func() bool) error {
	return waitForWithin(ctx, settleTimeout, cond)
}

// waitForWithin polls cond until it holds, for at most d.
func waitForWithin(ctx context.Context, d time.Duration, cond func() bool) error {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	for !cond() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return nil
}
