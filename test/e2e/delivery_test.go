package e2e

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/kestrelai/otelcol-kestrel/internal/devcloud"
	"github.com/kestrelai/otelcol-kestrel/internal/testutil"
	"github.com/kestrelai/otelcol-kestrel/internal/testutil/cloudtest"
	"github.com/kestrelai/otelcol-kestrel/internal/testutil/faulttest"
)

// The exporter's queue in file_storage, no batch processor: what the queue holds survives a
// collector crash, and a batch leaves it only once the cloud acknowledged it.
const fileStorageConfig = `
  file_storage:
    directory: %[2]s
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: %[1]s
exporters:
  kestrel:
    connection: kestrel_command
    retry_on_failure:
      initial_interval: 50ms
      max_interval: 500ms
      max_elapsed_time: 0
    sending_queue:
      storage: file_storage
      queue_size: 268435456 # bytes
service:
  extensions: [kestrel_command, file_storage]
  pipelines:
    logs:
      receivers: [otlp]
      exporters: [kestrel]
  telemetry:
    logs:
      level: warn
    metrics:
      level: none
`

// The short version of the soak test's 10-minute outage (test/soak): a cloud outage of a few
// seconds at 2,000 records/s with a file_storage queue loses nothing and refuses nothing.
// Duplicates are reported, not asserted: a message whose acknowledgement the exporter's
// timeout gave up on is sent again as a new message (extension tests cover the filtering).
func TestOutageWithFileStorageLosesNothing(t *testing.T) {
	// The cloud records to files, so that what it received before the outage counts too and
	// it keeps its acknowledged sequences across the restart, as a real cloud would.
	records := filepath.Join(t.TempDir(), "records")
	cloud := cloudtest.Start(t, devcloud.Config{RecordDir: records})
	otlpAddr := testutil.FreeAddr(t)
	// withConnection starts the extensions section; file_storage joins it.
	startWithConfig(t, withConnection(t, cloud, fmt.Sprintf(fileStorageConfig, otlpAddr, t.TempDir())))
	cloud.WaitCommitted(t)

	s, err := faulttest.NewSender(otlpAddr, 2000, 50)
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.Run(ctx, 30*time.Second)
	}()
	time.Sleep(2 * time.Second)
	cloud.Kill()
	time.Sleep(5 * time.Second)
	cloud.Restart(t)
	time.Sleep(2 * time.Second)
	cancel()
	<-done

	_, _, refused, _ := s.Counts()
	var d map[int]int
	require.Eventually(t, func() bool {
		d, err = faulttest.DeliveredInRecordDir(records)
		require.NoError(t, err)
		return len(faulttest.LostOnes(s, d, 1)) == 0
	}, 90*time.Second, 100*time.Millisecond, "every accepted record is delivered")
	tally := faulttest.Count(s, d, cloud.Status().Duplicates)
	t.Logf("outage with file_storage: %s", tally)
	require.Zero(t, tally.Lost)
	require.Zero(t, refused)
}
