package logmap

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/plog"
	"google.golang.org/protobuf/proto"
)

// FuzzMap feeds arbitrary OTLP bytes to Map: it must not panic, must account for every
// record exactly once, must only produce payloads that marshal (valid UTF-8, valid
// timestamps), and Unsent must rebuild exactly the records behind the items.
func FuzzMap(f *testing.F) {
	seeds, err := filepath.Glob("testdata/*.otlp.json")
	require.NoError(f, err)
	examples, err := filepath.Glob("../../examples/otlp/*.json")
	require.NoError(f, err)
	for _, p := range append(seeds, examples...) {
		b, err := (&plog.ProtoMarshaler{}).MarshalLogs(readLogs(f, p))
		require.NoError(f, err)
		f.Add(b)
	}
	m := NewMapper(fixedNow)
	f.Fuzz(func(t *testing.T, data []byte) {
		ld, err := (&plog.ProtoUnmarshaler{}).UnmarshalLogs(data)
		if err != nil {
			return
		}
		res := m.Map(ld)
		mapped, dropped := 0, 0
		for _, it := range res.Items {
			mapped += it.Records
			_, err := proto.Marshal(it.Payload)
			require.NoError(t, err)
		}
		for _, d := range res.Drops {
			dropped += d.Count
		}
		require.Equal(t, ld.LogRecordCount(), mapped+dropped)
		require.Equal(t, mapped, res.Unsent(ld, 0).LogRecordCount())
		if len(res.Items) > 0 {
			last := res.Items[len(res.Items)-1]
			require.Equal(t, last.Records, res.Unsent(ld, len(res.Items)-1).LogRecordCount())
		}
	})
}
