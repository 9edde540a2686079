package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/kestrelai/otelcol-kestrel/internal/devcloud"
)

// pipeline is one pipeline of the collector's service section.
type pipeline struct {
	Receivers  []string `yaml:"receivers"`
	Processors []string `yaml:"processors,omitempty"`
	Exporters  []string `yaml:"exporters"`
}

// collectorConfig is the configuration a scenario runs the collector with; drivers add
// their components and pipelines to it.
type collectorConfig struct {
	Extensions map[string]any      `yaml:"extensions"`
	Receivers  map[string]any      `yaml:"receivers"`
	Processors map[string]any      `yaml:"processors,omitempty"`
	Exporters  map[string]any      `yaml:"exporters"`
	Pipelines  map[string]pipeline `yaml:"-"`
	// Env is added to the collector's environment (e.g. GOMEMLIMIT).
	Env []string `yaml:"-"`

	extensionOrder []string
	metricsAddr    string
}

// newConfig returns the part every scenario shares: health_check (readiness), the
// self-metrics the harness scrapes, pprof when profiling, and the connection to the cloud
// when the scenario sends there (the baselines do not).
func (e *env) newConfig(withCloud bool) *collectorConfig {
	c := &collectorConfig{
		Extensions:  map[string]any{"health_check": map[string]any{"endpoint": e.healthAddr}},
		Receivers:   map[string]any{},
		Processors:  map[string]any{},
		Exporters:   map[string]any{},
		Pipelines:   map[string]pipeline{},
		metricsAddr: e.metricsAddr,
	}
	c.extensionOrder = []string{"health_check"}
	if withCloud {
		c.Extensions["kestrel_command"] = map[string]any{
			"endpoint": e.cloud.Addr(),
			"tls": map[string]any{
				"ca_file":   filepath.Join(e.certs, devcloud.CACertFile),
				"cert_file": filepath.Join(e.certs, devcloud.ClientCertFile),
				"key_file":  filepath.Join(e.certs, devcloud.ClientKeyFile),
			},
			"token": map[string]any{"file": filepath.Join(e.certs, devcloud.TokenFile)},
		}
		c.extensionOrder = append(c.extensionOrder, "kestrel_command")
	}
	if e.pprofAddr != "" {
		c.Extensions["pprof"] = map[string]any{"endpoint": e.pprofAddr}
		c.extensionOrder = append(c.extensionOrder, "pprof")
	}
	return c
}

// memoryLimiter and batch are the processors config/local.yaml runs OTLP logs through.
var (
	memoryLimiter = map[string]any{"check_interval": "1s", "limit_mib": 512, "spike_limit_mib": 128}
	batch         = map[string]any{}
)

func (c *collectorConfig) yaml() ([]byte, error) {
	host, portStr, err := net.SplitHostPort(c.metricsAddr)
	if err != nil {
		return nil, err
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, err
	}
	doc := map[string]any{
		"extensions": c.Extensions,
		"receivers":  c.Receivers,
		"exporters":  c.Exporters,
		"service": map[string]any{
			"extensions": c.extensionOrder,
			"pipelines":  c.Pipelines,
			"telemetry": map[string]any{
				"metrics": map[string]any{"readers": []any{map[string]any{"pull": map[string]any{
					"exporter": map[string]any{"prometheus": map[string]any{"host": host, "port": port}},
				}}}},
			},
		},
	}
	if len(c.Processors) > 0 {
		doc["processors"] = c.Processors
	}
	return yaml.Marshal(doc)
}

// collector is otelcol-kestrel running as a child process.
type collector struct {
	cmd    *exec.Cmd
	proc   *procReader
	exited chan struct{}
	err    error // the process's exit, once exited is closed
	log    string
}

// startCollector writes cfg to the run's directory, starts the binary with it and waits
// until its health check answers.
func startCollector(ctx context.Context, e *env, cfg *collectorConfig, name string) (*collector, error) {
	raw, err := cfg.yaml()
	if err != nil {
		return nil, err
	}
	path := filepath.Join(e.dir, name+".yaml")
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		return nil, err
	}
	logPath := filepath.Join(e.dir, name+".log")
	logFile, err := os.Create(logPath) //nolint:gosec // the run's own directory
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(e.bin, "--config", path) //nolint:gosec // the binary under test, from the command line
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.Env = append(os.Environ(), cfg.Env...)
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, err
	}
	c := &collector{cmd: cmd, exited: make(chan struct{}), log: logPath}
	go func() {
		c.err = cmd.Wait()
		logFile.Close()
		close(c.exited)
	}()
	if c.proc, err = newProcReader(cmd.Process.Pid); err != nil {
		c.kill()
		return nil, err
	}
	if err := c.waitHealthy(ctx, e.healthAddr); err != nil {
		c.kill()
		return nil, fmt.Errorf("%w (log: %s)", err, logPath)
	}
	return c, nil
}

func (c *collector) waitHealthy(ctx context.Context, addr string) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/", http.NoBody)
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
		case <-c.exited:
			return fmt.Errorf("collector exited while starting: %w", c.err)
		case <-ctx.Done():
			return fmt.Errorf("collector not healthy: %w", ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// stop sends SIGTERM, so the collector flushes its windows and drains its queues, and waits
// for it to exit; after timeout it kills it and reports that.
func (c *collector) stop(timeout time.Duration) error {
	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return err
	}
	select {
	case <-c.exited:
		return c.err
	case <-time.After(timeout):
		c.kill()
		return fmt.Errorf("collector did not stop within %v; killed (log: %s)", timeout, c.log)
	}
}

func (c *collector) kill() {
	_ = c.cmd.Process.Kill()
	<-c.exited
}
