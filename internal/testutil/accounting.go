package testutil // import "github.com/kestrelai/otelcol-kestrel/internal/testutil"

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/pdata/plog"
	"google.golang.org/protobuf/proto"

	"github.com/kestrelai/otelcol-kestrel/internal/logmap"
)

// RequireAccounted requires res, what logmap made of ld, to account for every record
// exactly once: sent in a payload, which must marshal, or counted as dropped. Unsent must
// rebuild exactly the records behind the payloads, so that a retry resends what was not
// sent and nothing else.
func RequireAccounted(tb testing.TB, ld plog.Logs, res logmap.Result) {
	tb.Helper()
	sent, dropped := 0, 0
	for _, it := range res.Items {
		sent += it.Records
		_, err := proto.Marshal(it.Payload)
		require.NoError(tb, err)
	}
	for _, d := range res.Drops {
		dropped += d.Count
	}
	require.Equal(tb, ld.LogRecordCount(), sent+dropped, "records sent plus records dropped")
	require.Equal(tb, sent, res.Unsent(ld, 0).LogRecordCount(), "records behind the payloads")
	if len(res.Items) > 0 {
		last := res.Items[len(res.Items)-1]
		require.Equal(tb, last.Records, res.Unsent(ld, len(res.Items)-1).LogRecordCount(), "records behind the last payload")
	}
}

// AccountingConsumer maps every batch it consumes as the kestrel exporter does and
// requires RequireAccounted of the result.
func AccountingConsumer(tb testing.TB) consumer.Logs {
	tb.Helper()
	m := logmap.NewMapper(nil)
	c, err := consumer.NewLogs(func(_ context.Context, ld plog.Logs) error {
		RequireAccounted(tb, ld, m.Map(ld))
		return nil
	})
	require.NoError(tb, err)
	return c
}
