package testutil // import "github.com/kestrelai/otelcol-kestrel/internal/testutil"

import (
	"iter"

	"go.opentelemetry.io/collector/pdata/plog"
)

// LogRecords yields every log record of lds, in order.
func LogRecords(lds ...plog.Logs) iter.Seq[plog.LogRecord] {
	return func(yield func(plog.LogRecord) bool) {
		for _, ld := range lds {
			rls := ld.ResourceLogs()
			for i := 0; i < rls.Len(); i++ {
				sls := rls.At(i).ScopeLogs()
				for j := 0; j < sls.Len(); j++ {
					lrs := sls.At(j).LogRecords()
					for k := 0; k < lrs.Len(); k++ {
						if !yield(lrs.At(k)) {
							return
						}
					}
				}
			}
		}
	}
}
