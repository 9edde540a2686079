package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/otelcol"
	"go.opentelemetry.io/collector/receiver"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"

	cloudv1 "github.com/kestrelai/otelcol-kestrel/api/cloud/v1"
	"github.com/kestrelai/otelcol-kestrel/components"
	"github.com/kestrelai/otelcol-kestrel/internal/cloudconn"
	"github.com/kestrelai/otelcol-kestrel/internal/devcloud"
	"github.com/kestrelai/otelcol-kestrel/internal/testutil/cloudtest"
)

// loggingReceiver is a test component whose only job is to hand out its logger (the one
// the service gives every component), so the test can log as a component does.
func loggingReceiver(logger *atomic.Pointer[zap.Logger]) receiver.Factory {
	typ := component.MustNewType("selflog_test")
	return receiver.NewFactory(typ, func() component.Config { return &struct{}{} },
		receiver.WithLogs(func(_ context.Context, set receiver.Settings, _ component.Config, _ consumer.Logs) (receiver.Logs, error) {
			logger.Store(set.Logger)
			return nopReceiver{}, nil
		}, component.StabilityLevelDevelopment))
}

type nopReceiver struct{}

func (nopReceiver) Start(context.Context, component.Host) error { return nil }
func (nopReceiver) Shutdown(context.Context) error              { return nil }

const selfLogsConfig = `
receivers:
  selflog_test: {}
exporters:
  nop: {}
service:
  extensions: [kestrel_command]
  pipelines:
    logs:
      receivers: [selflog_test]
      exporters: [nop]
  telemetry:
    logs:
      # stderr shows errors only; the cloud still gets the warnings.
      level: error
    metrics:
      level: none
`

var summaryRE = regexp.MustCompile(`^kestrel_command: (\d+) warning and error log entries of this collector were not sent`)

// The collector's own warnings reach the cloud as PodLogs of its pod, on StreamLogs; a
// storm of 100,000 warnings is cut to the self_logs rate and the rest is counted in a
// summary line: every warning is either delivered or counted.
func TestSelfLogsReachTheCloudAsPodLogs(t *testing.T) {
	cloud := cloudtest.Start(t, devcloud.Config{})
	conn := cloud.ConnectionConfig()
	conn["self_logs"] = map[string]any{
		"pod_name": "kestrel-operator-7d9f-abcde", "namespace": "kestrel-ai", "pod_uid": "uid-1", "node_name": "node-1",
		"rate_per_second": 50, "burst": 100, "flush_interval": "200ms",
	}
	raw, err := json.Marshal(conn)
	require.NoError(t, err)

	var logger atomic.Pointer[zap.Logger]
	factories := func() (otelcol.Factories, error) {
		f, err := components.Components()
		if err != nil {
			return f, err
		}
		rf := loggingReceiver(&logger)
		f.Receivers[rf.Type()] = rf
		return f, nil
	}
	startWithFactories(t, "extensions:\n  kestrel_command: "+string(raw)+"\n"+selfLogsConfig, factories)
	cloud.WaitCommitted(t)
	log := logger.Load()
	require.NotNil(t, log)

	// One warning, as a component logs it.
	log.Warn("relay unreachable", zap.Error(fmt.Errorf("dial tcp 10.0.0.1:4245: connection refused")))
	first := cloud.WaitPayload(t, "the warning as PodLogs", func(m proto.Message) bool {
		pl, ok := m.(*cloudv1.PodLogs)
		return ok && len(pl.GetLogEntries()) > 0 && strings.Contains(pl.GetLogEntries()[0].GetMessage(), "relay unreachable")
	}).(*cloudv1.PodLogs)
	assert.Equal(t, "kestrel-operator-7d9f-abcde", first.GetPodName())
	assert.Equal(t, "kestrel-ai", first.GetNamespace())
	assert.Equal(t, "uid-1", first.GetPodUid())
	assert.Equal(t, "node-1", first.GetNodeName())
	assert.Equal(t, "otelcol-kestrel", first.GetContainerName())
	en := first.GetLogEntries()[0]
	t.Logf("first entry: level %q message %q", en.GetLevel(), en.GetMessage())
	assert.Equal(t, "WARN", en.GetLevel())
	assert.Contains(t, en.GetMessage(), "selflog_test", "the component's id travels with the message")
	assert.Equal(t, "dial tcp 10.0.0.1:4245: connection refused", en.GetErrorInfo().GetErrorMessage())
	for _, r := range cloud.Records() {
		if _, ok := r.Payload.(*cloudv1.PodLogs); ok {
			assert.Equal(t, cloudconn.StreamLogs, r.Stream)
		}
	}

	// The storm.
	const storm = 100_000
	start := time.Now()
	for i := range storm {
		log.Warn("storm", zap.Int("i", i))
	}
	stormTook := time.Since(start)

	var delivered, counted int
	require.Eventually(t, func() bool {
		delivered, counted = 0, 0
		for _, m := range cloud.Payloads() {
			pl, ok := m.(*cloudv1.PodLogs)
			if !ok {
				continue
			}
			for _, e := range pl.GetLogEntries() {
				if sm := summaryRE.FindStringSubmatch(e.GetMessage()); sm != nil {
					n, _ := strconv.Atoi(sm[1])
					counted += n
				} else if strings.Contains(e.GetMessage(), "storm") {
					delivered++
				}
			}
		}
		return delivered+counted >= storm
	}, 30*time.Second, 50*time.Millisecond, "every warning is delivered or counted")
	// Bursts of 100 plus 50 a second while the storm and the flushes ran.
	limit := 100 + int(50*(time.Since(start).Seconds()+1))
	t.Logf("storm: logged %d in %v, delivered %d, counted as dropped %d, lost %d", storm, stormTook, delivered, counted, storm-delivered-counted)
	assert.LessOrEqual(t, delivered, limit, "the limiter bounds what is sent")
	assert.Equal(t, storm, delivered+counted, "nothing lost silently, nothing counted twice")
}
