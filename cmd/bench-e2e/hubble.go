package main

import (
	"context"
	"time"

	cloudv1 "github.com/kestrelai/otelcol-kestrel/api/cloud/v1"
	"github.com/kestrelai/otelcol-kestrel/internal/devcloud"
	"github.com/kestrelai/otelcol-kestrel/internal/testutil/faulttest"
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
	// agent runs the chart's flow-agent pipeline instead: hubble → memory_limiter →
	// otlp_grpc, into an OTLP sink that adds up the aggregates' counts.
	agent bool
	// onNode serves the flows on a unix socket, as a node's Hubble server does for the node
	// agent, instead of over TCP as Relay does.
	onNode bool
	// merge measures the collector of the chart's relay mode instead: a relay agent (a peer
	// process of -agent-bin) follows Relay and sends its aggregates to the collector's
	// otlp/agents → memory_limiter → flow_merge → batch → kestrel, as the chart configures
	// them; delivered is what reaches the cloud.
	merge     bool
	agentProc *faulttest.Process

	relay *relay
	sink  *otlpSink
}

func (h *hubbleLoad) configure(_ context.Context, e *env, cfg *collectorConfig) error {
	gen, err := newFlowGen(max(h.keys, 1), h.fixedPorts, e.seed)
	if err != nil {
		return err
	}
	if h.relay, err = startRelay(gen, h.rate, h.onNode); err != nil {
		return err
	}
	hubble := map[string]any{"endpoint": h.relay.addr, "tls": map[string]any{"insecure": true}}
	if h.merge {
		return h.startMerge(e, cfg, hubble)
	}
	if h.agent {
		if h.sink, err = startOTLPSink(); err != nil {
			return err
		}
		h.sink.aggregates = true
		agentPipeline(cfg, hubble, h.sink.addr)
		return nil
	}
	cfg.Receivers["hubble"] = hubble
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

// startMerge configures the collector's side of relay mode and starts the relay agent.
func (h *hubbleLoad) startMerge(e *env, cfg *collectorConfig, hubble map[string]any) error {
	agents, err := freeAddr()
	if err != nil {
		return err
	}
	cfg.Receivers["otlp/agents"] = map[string]any{"protocols": map[string]any{"grpc": map[string]any{"endpoint": agents}}}
	cfg.Processors["memory_limiter"] = memoryLimiter
	cfg.Processors["flow_merge"] = map[string]any{"window": "0s"} // the chart's relay mode: one sender
	cfg.Processors["batch"] = batch
	cfg.Exporters["kestrel"] = map[string]any{"connection": "kestrel_command"}
	cfg.Pipelines["logs/flows"] = pipeline{Receivers: []string{"otlp/agents"}, Processors: []string{"memory_limiter", "flow_merge", "batch"}, Exporters: []string{"kestrel"}}

	health, err := freeAddr()
	if err != nil {
		return err
	}
	metrics, err := freeAddr()
	if err != nil {
		return err
	}
	agent := &collectorConfig{
		Extensions:     map[string]any{"health_check": map[string]any{"endpoint": health}},
		Receivers:      map[string]any{},
		Processors:     map[string]any{},
		Exporters:      map[string]any{},
		Pipelines:      map[string]pipeline{},
		Env:            agentEnv,
		extensionOrder: []string{"health_check"},
		metricsAddr:    metrics,
	}
	agentPipeline(agent, hubble, agents)
	// Started before the collector: its exporter retries until the collector listens.
	h.agentProc, err = startPeer(e, agent, e.agentBin, "relay-agent")
	return err
}

// agentPipeline adds the chart's flow-agent pipeline to cfg: hubble → memory_limiter →
// otlp_grpc to endpoint.
func agentPipeline(cfg *collectorConfig, hubble map[string]any, endpoint string) {
	cfg.Receivers["hubble"] = hubble
	cfg.Processors["memory_limiter"] = agentMemoryLimiter
	cfg.Exporters["otlp_grpc"] = map[string]any{"endpoint": endpoint, "tls": map[string]any{"insecure": true}}
	cfg.Pipelines["logs"] = pipeline{Receivers: []string{"hubble"}, Processors: []string{"memory_limiter"}, Exporters: []string{"otlp_grpc"}}
}

// logsToCloud adds the logs pipeline of config/local.yaml from receiver to the kestrel
// exporter.
func logsToCloud(cfg *collectorConfig, receiver string) {
	cfg.Processors["memory_limiter"] = memoryLimiter
	cfg.Processors["batch"] = batch
	cfg.Exporters["kestrel"] = map[string]any{"connection": "kestrel_command"}
	cfg.Pipelines["logs"] = pipeline{Receivers: []string{receiver}, Processors: []string{"memory_limiter", "batch"}, Exporters: []string{"kestrel"}}
}

// agentMemoryLimiter is the chart's flow agents', for their default 256 MiB limit.
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
	if h.merge {
		// The flows pass the agent's window and then flow_merge's, each 30 s.
		return waitForWithin(ctx, mergeSettleTimeout, func() bool { return sumCounts(e.cloud.Records()) >= sent })
	}
	return e.waitSelfMetric(ctx, "otelcol_hubble_receiver_flows", float64(sent))
}

// mergeSettleTimeout bounds the wait for flows that pass two 30 s windows.
const mergeSettleTimeout = 2 * time.Minute

func (h *hubbleLoad) delivered(_ context.Context, e *env) (int64, error) {
	if h.agent {
		return h.sink.items.Load(), nil
	}
	return sumCounts(e.cloud.Records()), nil
}

func (h *hubbleLoad) reconnects() int64 { return h.relay.streams.Load() - 1 }

func (h *hubbleLoad) close() {
	if h.agentProc != nil {
		h.agentProc.Kill()
	}
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
