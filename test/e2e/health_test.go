package e2e

import (
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/featuregate"

	"github.com/kestrelai/otelcol-kestrel/internal/devcloud"
	"github.com/kestrelai/otelcol-kestrel/internal/testutil"
	"github.com/kestrelai/otelcol-kestrel/internal/testutil/cloudtest"
)

// health_check as config/local.yaml sets it up, with a short recovery_duration.
const healthConfig = `
  health_check:
    endpoint: %[1]s
    http:
      endpoint: %[1]s
      status:
        enabled: true
        path: /
    component_health:
      include_recoverable_errors: true
      recovery_duration: 500ms
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: %[2]s
exporters:
  kestrel:
    connection: kestrel_command
service:
  # The collector orders extensions that do not depend on each other as it likes; once it
  # shuts down, kestrel_command no longer reports status (NotReady), so none reaches a
  # health_check that has already stopped.
  extensions: [health_check, kestrel_command]
  pipelines:
    logs:
      receivers: [otlp]
      exporters: [kestrel]
  telemetry:
    logs:
      level: error
    metrics:
      level: none
`

// The health endpoint follows the Kestrel Cloud connection: 200 while connected, 500 once
// the cloud has been gone for longer than recovery_duration, 200 again after it is back.
func TestHealthEndpointShowsTheConnection(t *testing.T) {
	const gate = "extension.healthcheck.useComponentStatus"
	require.NoError(t, featuregate.GlobalRegistry().Set(gate, true))
	t.Cleanup(func() { _ = featuregate.GlobalRegistry().Set(gate, false) })

	cloud := cloudtest.Start(t, devcloud.Config{})
	healthAddr := testutil.FreeAddr(t)
	cfg := withConnection(t, cloud, fmt.Sprintf(healthConfig, healthAddr, testutil.FreeAddr(t)))
	startWithConfig(t, cfg)
	cloud.WaitCommitted(t)

	code := func() int {
		resp, err := http.Get("http://" + healthAddr + "/") //nolint:noctx // a loopback probe with the client's default
		if err != nil {
			return 0
		}
		defer resp.Body.Close()
		_, _ = io.Copy(io.Discard, resp.Body)
		return resp.StatusCode
	}
	require.Eventually(t, func() bool { return code() == http.StatusOK }, 30*time.Second, 50*time.Millisecond, "healthy while connected")
	cloud.Kill()
	// health_check answers an unhealthy recoverable error with 500.
	require.Eventually(t, func() bool { return code() == http.StatusInternalServerError }, 30*time.Second, 50*time.Millisecond, "unhealthy while the cloud is gone")
	cloud.Restart(t)
	require.Eventually(t, func() bool { return code() == http.StatusOK }, 30*time.Second, 50*time.Millisecond, "healthy again")
}
