package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/kestrelai/otelcol-kestrel/internal/devcloud"
	"github.com/kestrelai/otelcol-kestrel/internal/testutil/faulttest"
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

// startPeer writes cfg to the run's directory as name.yaml and starts bin with it, logging
// to name.log.
func startPeer(e *env, cfg *collectorConfig, bin, name string) (*faulttest.Process, error) {
	raw, err := cfg.yaml()
	if err != nil {
		return nil, err
	}
	path := filepath.Join(e.dir, name+".yaml")
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "--config", path) //nolint:gosec // the binaries under test, from the command line
	cmd.Env = append(os.Environ(), cfg.Env...)
	return faulttest.StartCmd(cmd, filepath.Join(e.dir, name+".log"))
}

// collector is otelcol-kestrel running as a child process.
type collector struct {
	*faulttest.Process
	proc *procReader
}

// startCollector writes cfg to the run's directory, starts the binary with it and waits
// until its health check answers.
func startCollector(ctx context.Context, e *env, cfg *collectorConfig, name string) (*collector, error) {
	p, err := startPeer(e, cfg, e.bin, name)
	if err != nil {
		return nil, err
	}
	c := &collector{Process: p}
	if c.proc, err = newProcReader(p.Pid()); err != nil {
		p.Kill()
		return nil, err
	}
	healthCtx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := p.WaitHTTP(healthCtx, "http://"+e.healthAddr+"/"); err != nil {
		p.Kill()
		return nil, fmt.Errorf("collector not healthy: %w", err)
	}
	return c, nil
}
