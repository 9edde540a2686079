package main

import (
	"context"
	"time"
)

// scenario is one row of the table: a load, how long it runs, and what it is compared with.
type scenario struct {
	name  string
	items string // what the load sends: flows, access logs, log records, data points
	// duration is the load's length; short the length in -short mode.
	duration, short time.Duration
	// baseline names the scenario measured in the same run that this one is compared to.
	baseline string
	// cloud says whether the collector connects to the cloud (kestrel_command).
	cloud bool
	// agent runs the flow agent's binary (-agent-bin) instead of the distribution.
	agent bool
	// env is the process's environment as the chart sets it (before -env).
	env []string
	// newLoad makes the load of one run.
	newLoad func() load
	// inventoryPods, when set, makes this an inventory scenario (inventory.go) over a
	// cluster of that many pods instead of a load.
	inventoryPods int
}

// load drives one run of a scenario.
type load interface {
	// configure starts the peers the collector talks to and adds the load's components and
	// pipelines to cfg.
	configure(ctx context.Context, e *env, cfg *collectorConfig) error
	// ready returns once the collector is connected and the load can start.
	ready(ctx context.Context, e *env) error
	// run drives the load until ctx ends and returns how many items it sent.
	run(ctx context.Context, e *env) (int64, error)
	// settle returns once the collector has taken in sent items (or fails after
	// settleTimeout); the collector is measured right after it.
	settle(ctx context.Context, e *env, sent int64) error
	// delivered counts the items that arrived, after the collector has stopped.
	delivered(ctx context.Context, e *env) (int64, error)
	// reconnects is how often the collector reconnected to the load's peer; -1 if the load
	// cannot tell.
	reconnects() int64
	close()
}

// boundedQueue is a kestrel exporter sending_queue bounded in bytes (of the protobuf
// encoding of the records it holds): a full queue refuses, and the receivers' windows offer
// the refused records again, so a window waits instead of being held whole as pdata.
var boundedQueue = map[string]any{"sizer": "bytes", "queue_size": 4 << 20}

// agentEnv is the chart's environment of the flow agents (relayAgent and nodeAgent: gogc,
// gomaxprocs).
var agentEnv = []string{"GOGC=50", "GOMAXPROCS=1"}

// scenarios is the table `make bench-e2e` runs, in this order. Add a row for a new load.
var scenarios = []scenario{
	{name: "inventory 5,000 pods", inventoryPods: 5_000},
	{name: "inventory 20,000 pods", inventoryPods: 20_000},
	{
		name: "hubble 20k/s, 1,000 keys", items: "flows", duration: time.Minute, short: 20 * time.Second, cloud: true,
		newLoad: func() load { return &hubbleLoad{rate: 20_000, keys: 1_000} },
	},
	{
		name: "hubble 20k/s, 20,000 keys", items: "flows", duration: time.Minute, short: 20 * time.Second, cloud: true,
		newLoad: func() load { return &hubbleLoad{rate: 20_000, keys: 20_000} },
	},
	{
		name: "hubble 20k/s, 20,000 keys, exporter waits for each send", items: "flows", duration: time.Minute, short: 20 * time.Second, cloud: true,
		newLoad: func() load { return &hubbleLoad{rate: 20_000, keys: 20_000, backPressure: true} },
	},
	{
		name: "hubble 20k/s, 20,000 keys, exporter queue bounded at 4 MiB", items: "flows", duration: time.Minute, short: 20 * time.Second, cloud: true,
		newLoad: func() load { return &hubbleLoad{rate: 20_000, keys: 20_000, queue: boundedQueue} },
	},
	{
		name: "hubble max rate, 1,000 keys", items: "flows", duration: 30 * time.Second, short: 10 * time.Second, cloud: true,
		newLoad: func() load { return &hubbleLoad{keys: 1_000} },
	},
	{
		name: "hubble 20k/s, 1,000 keys, fixed source ports", items: "flows", duration: time.Minute, short: 20 * time.Second, cloud: true,
		newLoad: func() load { return &hubbleLoad{rate: 20_000, keys: 1_000, fixedPorts: true} },
	},
	{
		name: "hubble idle, Relay connected", duration: 2 * time.Minute, short: 45 * time.Second, cloud: true,
		newLoad: func() load { return &hubbleLoad{idle: true} },
	},
	// The chart's relay mode: the relay agent follows Relay over TCP.
	{
		name: "relay agent: hubble 20k/s, 20,000 keys", items: "flows", duration: time.Minute, short: 20 * time.Second, agent: true, env: agentEnv,
		newLoad: func() load { return &hubbleLoad{rate: 20_000, keys: 20_000, agent: true} },
	},
	{
		name: "relay agent: hubble max rate, 1,000 keys", items: "flows", duration: 30 * time.Second, short: 10 * time.Second, agent: true, env: agentEnv,
		newLoad: func() load { return &hubbleLoad{keys: 1_000, agent: true} },
	},
	{
		name: "relay agent: hubble idle, Relay connected", duration: 2 * time.Minute, short: 45 * time.Second, agent: true, env: agentEnv,
		newLoad: func() load { return &hubbleLoad{idle: true, agent: true} },
	},
	{
		name: "relay mode, collector: the relay agent's aggregates of 20k/s, 20,000 keys", items: "flows", duration: time.Minute, short: 20 * time.Second, cloud: true,
		newLoad: func() load { return &hubbleLoad{rate: 20_000, keys: 20_000, merge: true} },
	},
	// The chart's node mode: a node agent follows its node's Hubble server on the unix socket.
	{
		name: "node agent: hubble 20k/s, 20,000 keys", items: "flows", duration: time.Minute, short: 20 * time.Second, agent: true, env: agentEnv,
		newLoad: func() load { return &hubbleLoad{rate: 20_000, keys: 20_000, agent: true, onNode: true} },
	},
	{
		name: "node agent: hubble max rate, 1,000 keys", items: "flows", duration: 30 * time.Second, short: 10 * time.Second, agent: true, env: agentEnv,
		newLoad: func() load { return &hubbleLoad{keys: 1_000, agent: true, onNode: true} },
	},
	{
		name: "node agent: hubble idle, Hubble server connected", duration: 2 * time.Minute, short: 45 * time.Second, agent: true, env: agentEnv,
		newLoad: func() load { return &hubbleLoad{idle: true, agent: true, onNode: true} },
	},
	{
		name: "envoy ALS 10k/s, 1,000 keys, 4 sidecars", items: "access logs", duration: time.Minute, short: 20 * time.Second, cloud: true,
		newLoad: func() load { return &alsLoad{rate: 10_000, keys: 1_000, sidecars: 4} },
	},
	{
		name: "otlp logs 10k/s → kestrel", items: "log records", duration: time.Minute, short: 20 * time.Second, cloud: true,
		baseline: "otlp logs 10k/s → otlp (baseline)",
		newLoad:  func() load { return &otlpLoad{signal: otlpLogs, rate: 10_000, batch: 100} },
	},
	{
		name: "otlp logs 10k/s → otlp (baseline)", items: "log records", duration: time.Minute, short: 20 * time.Second,
		newLoad: func() load { return &otlpLoad{signal: otlpLogs, rate: 10_000, batch: 100, baseline: true} },
	},
	{
		name: "otlp metrics 10k points/s → metrics_store", items: "data points", duration: time.Minute, short: 20 * time.Second, cloud: true,
		baseline: "otlp metrics 10k points/s → otlp (baseline)",
		newLoad:  func() load { return &otlpLoad{signal: otlpMetrics, rate: 10_000, batch: 500} },
	},
	{
		name: "otlp metrics 10k points/s → otlp (baseline)", items: "data points", duration: time.Minute, short: 20 * time.Second,
		newLoad: func() load { return &otlpLoad{signal: otlpMetrics, rate: 10_000, batch: 500, baseline: true} },
	},
}
