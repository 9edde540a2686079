package main

import (
	"context"
	"time"

	cloudv1 "github.com/kestrelai/otelcol-kestrel/api/cloud/v1"
	"github.com/kestrelai/otelcol-kestrel/internal/devcloud"
)

// hubbleLoad follows a Relay that streams synthetic flows (or, idle, none) through
// hubble → kestrel to the cloud, the pipeline of the receiver's README (its window already
// batches); items are flows, delivered is the sum of the counts of the cloud.v1.Flow
// aggregates that arrive.
type hubbleLoad struct {
	rate       int // flows/s; 0 = as fast as the collector reads
	keys       int
	fixedPorts bool
	idle       bool
	// backPressure makes the kestrel exporter's queue wait for each batch to be sent
	// (sending_queue::wait_for_result), so a window's flush produces no faster than the
	// connection sends instead of queueing the whole window as pdata.
	backPressure bool
	// queue, if set, is the kestrel exporter's sending_queue.
	queue map[string]any
	// agent runs the chart's node-agent pipeline instead: the Hubble server's unix socket →
	// hubble → memory_limiter → otlp_grpc, into an OTLP sink that adds up the aggregates'
	// counts.
	agent bool

	relay *relay
	sink  *otlpSink
}

func (h *hubbleLoad) configure(_ context.Context, e *env, cfg *collectorConfig) error {
	gen, err := newFlowGen(max(h.keys, 1), h.fixedPorts, e.seed)
	if err != nil {
		return err
	}
	if h.relay, err = startRelay(gen, h.rate, h.agent); err != nil {
		return err
	}
	cfg.Receivers["hubble"] = map[string]any{"endpoint": h.relay.addr, "tls": map[string]any{"insecure": true}}
	if h.agent {
		if h.sink, err = startOTLPSink(); err != nil {
			return err
		}
		h.sink.aggregates = true
		cfg.Processors["memory_limiter"] = agentMemoryLimiter
		cfg.Exporters["otlp_grpc"] = map[string]any{"endpoint": h.sink.addr, "tls": map[string]any{"insecure": true}}
		cfg.Pipelines["logs"] = pipeline{Receivers: []string{"hubble"}, Processors: []string{"memory_limiter"}, Exporters: []string{"otlp_grpc"}}
		return nil
	}
	kestrel := map[string]any{"connection": "kestrel_command"}
	if h.backPressure {
		kestrel["sending_queue"] = map[string]any{"wait_for_result": true}
	}
	if h.queue != nil {
		kestrel["sending_queue"] = h.queue
	}
	cfg.Exporters["kestrel"] = kestrel
	cfg.Pipelines["logs"] = pipeline{Receivers: []string{"hubble"}, Exporters: []string{"kestrel"}}
	return nil
}

// logsToCloud adds the logs pipeline of config/local.yaml from receiver to the kestrel
// exporter.
func logsToCloud(cfg *collectorConfig, receiver string) {
	cfg.Processors["memory_limiter"] = memoryLimiter
	cfg.Processors["batch"] = batch
	cfg.Exporters["kestrel"] = map[string]any{"connection": "kestrel_command"}
	cfg.Pipelines["logs"] = pipeline{Receivers: []string{receiver}, Processors: []string{"memory_limiter", "batch"}, Exporters: []string{"kestrel"}}
}

// agentMemoryLimiter is the chart's node agent's, for its default 256 MiB limit.
var agentMemoryLimiter = map[string]any{"check_interval": "1s", "limit_mib": 204, "spike_limit_mib": 64}

func (h *hubbleLoad) ready(ctx context.Context, e *env) error {
	if err := h.relay.waitStream(ctx); err != nil {
		return err
	}
	if h.agent {
		return nil
	}
	return e.waitCloudReady(ctx)
}

func (h *hubbleLoad) run(ctx context.Context, _ *env) (int64, error) {
	if h.idle {
		<-ctx.Done()
		return 0, nil
	}
	return h.relay.run(ctx), nil
}

func (h *hubbleLoad) settle(ctx context.Context, e *env, sent int64) error {
	return e.waitSelfMetric(ctx, "otelcol_hubble_receiver_flows", float64(sent))
}

func (h *hubbleLoad) delivered(_ context.Context, e *env) (int64, error) {
	if h.agent {
		return h.sink.items.Load(), nil
	}
	return sumCounts(e.cloud.Records()), nil
}

func (h *hubbleLoad) reconnects() int64 { return h.relay.streams.Load() - 1 }

func (h *hubbleLoad) close() {
	if h.relay != nil {
		h.relay.close()
	}
	if h.sink != nil {
		h.sink.srv.Stop()
	}
}

// sumCounts adds up the aggregate counts of the flows and access logs the cloud received,
// and the log lines of PodLogs: the items those messages stand for.
func sumCounts(recs []devcloud.Record) int64 {
	var n int64
	for _, r := range recs {
		switch p := r.Payload.(type) {
		case *cloudv1.Flow:
			n += p.GetCount()
		case *cloudv1.L7AccessLog:
			n += p.GetCount()
		case *cloudv1.PodLogs:
			n += int64(len(p.GetLogEntries()))
		}
	}
	return n
}

// settleTimeout bounds how long the harness waits for the collector to take in what was
// sent before it measures.
const settleTimeout = 30 * time.Second
