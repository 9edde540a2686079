package logmap

import (
	"testing"

	"go.opentelemetry.io/collector/pdata/plog"
)

// For the fuzz tests in package logmap_test.

var ReadLogs = readLogs

// NetworkRecords returns a flow, an HTTP and a TCP access-log record, each in its own plog.Logs.
func NetworkRecords(tb testing.TB) []plog.Logs {
	return []plog.Logs{logsOf(tb, flowRecord()), logsOf(tb, httpRecord()), logsOf(tb, tcpRecord())}
}

// RiskRecords returns a finding of an attack chain, with every attribute set.
func RiskRecords(tb testing.TB) plog.Logs {
	f := riskFinding()
	return riskLogs(tb, &f)
}
