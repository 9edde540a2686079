package logmap

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/plog"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	cloudv1 "github.com/kestrelai/otelcol-kestrel/api/cloud/v1"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden.json from the current mapping")

// golden is the expected outcome of mapping one input. Payloads are stored as the
// StreamDataRequest that would carry them, in protojson, and compared with proto.Equal
// (protojson output is deliberately not byte-stable).
type golden struct {
	Items   []json.RawMessage `json:"items"`
	Records []int             `json:"records"`
	Drops   []Drop            `json:"drops"`
}

func envelope(t *testing.T, m proto.Message) *cloudv1.StreamDataRequest {
	switch p := m.(type) {
	case *cloudv1.KubernetesEvent:
		return &cloudv1.StreamDataRequest{Request: &cloudv1.StreamDataRequest_KubernetesEvent{KubernetesEvent: p}}
	case *cloudv1.PodLogs:
		return &cloudv1.StreamDataRequest{Request: &cloudv1.StreamDataRequest_PodLogs{PodLogs: p}}
	}
	t.Fatalf("no envelope for %T", m)
	return nil
}

func readLogs(tb testing.TB, path string) plog.Logs {
	tb.Helper()
	raw, err := os.ReadFile(path)
	require.NoError(tb, err)
	ld, err := (&plog.JSONUnmarshaler{}).UnmarshalLogs(raw)
	require.NoError(tb, err)
	return ld
}

func TestGolden(t *testing.T) {
	inputs, err := filepath.Glob("testdata/*.otlp.json")
	require.NoError(t, err)
	require.NotEmpty(t, inputs)
	for _, in := range inputs {
		t.Run(filepath.Base(in), func(t *testing.T) {
			res := NewMapper(fixedNow).Map(readLogs(t, in))
			goldenPath := strings.TrimSuffix(in, ".otlp.json") + ".golden.json"
			got := golden{Drops: res.Drops}
			for _, it := range res.Items {
				b, err := protojson.Marshal(envelope(t, it.Payload))
				require.NoError(t, err)
				got.Items = append(got.Items, b)
				got.Records = append(got.Records, it.Records)
			}
			if *update {
				b, err := json.Marshal(got)
				require.NoError(t, err)
				var out bytes.Buffer
				require.NoError(t, json.Indent(&out, b, "", "  "))
				out.WriteByte('\n')
				require.NoError(t, os.WriteFile(goldenPath, out.Bytes(), 0o600))
				return
			}
			raw, err := os.ReadFile(goldenPath)
			require.NoError(t, err, "run go test -update to create it")
			var want golden
			require.NoError(t, json.Unmarshal(raw, &want))
			require.Equal(t, want.Drops, got.Drops)
			require.Equal(t, want.Records, got.Records)
			require.Len(t, got.Items, len(want.Items))
			for i := range want.Items {
				var w cloudv1.StreamDataRequest
				require.NoError(t, protojson.Unmarshal(want.Items[i], &w))
				assertProtoEqual(t, &w, envelope(t, res.Items[i].Payload))
			}
		})
	}
}
