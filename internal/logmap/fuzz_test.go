// The fuzz tests are an external test package so that they can share testutil's
// accounting check, which imports logmap.
package logmap_test

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/kestrelai/otelcol-kestrel/internal/logmap"
	"github.com/kestrelai/otelcol-kestrel/internal/testutil"
)

// FuzzMap feeds arbitrary OTLP bytes to Map and each record to Fingerprint: neither may
// panic, and Map must account for every record exactly once, with payloads that marshal
// (valid UTF-8, valid timestamps).
func FuzzMap(f *testing.F) {
	seeds, err := filepath.Glob("testdata/*.otlp.json")
	require.NoError(f, err)
	examples, err := filepath.Glob("../../examples/otlp/*.json")
	require.NoError(f, err)
	for _, p := range append(seeds, examples...) {
		addSeed(f, logmap.ReadLogs(f, p))
	}
	fuzzMap(f)
}

// FuzzNetworkRecords is FuzzMap starting from flow and access-log records, so that the
// fuzzer mutates their attribute values.
func FuzzNetworkRecords(f *testing.F) {
	for _, ld := range logmap.NetworkRecords(f) {
		addSeed(f, ld)
	}
	fuzzMap(f)
}

// FuzzRiskRecords is FuzzMap starting from a risk finding with nested evidence and chain
// steps, so that the fuzzer mutates the lists of maps.
func FuzzRiskRecords(f *testing.F) {
	addSeed(f, logmap.RiskRecords(f))
	fuzzMap(f)
}

func addSeed(f *testing.F, ld plog.Logs) {
	b, err := (&plog.ProtoMarshaler{}).MarshalLogs(ld)
	require.NoError(f, err)
	f.Add(b)
}

func fuzzMap(f *testing.F) {
	m := logmap.NewMapper(nil)
	f.Fuzz(func(t *testing.T, data []byte) {
		ld, err := (&plog.ProtoUnmarshaler{}).UnmarshalLogs(data)
		if err != nil {
			return
		}
		res := m.Map(ld)
		testutil.RequireAccounted(t, ld, res)
		// Fingerprint maps one record the same way: it has a fingerprint exactly when Map
		// made it into a message of its own kind (not a log line grouped with others).
		for lr := range testutil.LogRecords(ld) {
			if _, ok := logmap.Fingerprint(lr); ok {
				require.True(t, logmap.Known(lr.EventName()) || lr.EventName() == "", "fingerprint of an unknown event %q", lr.EventName())
			}
		}
	})
}
