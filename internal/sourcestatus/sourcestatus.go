// Package sourcestatus folds the health of the several things a component reads or writes
// (informers, report writers, ...) into its one component status, and logs each change once.
package sourcestatus // import "github.com/kestrelai/otelcol-kestrel/internal/sourcestatus"

import (
	"errors"
	"slices"
	"strings"
	"sync"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componentstatus"
	"go.uber.org/zap"
)

// Reporter keeps one problem per source; the status is OK without problems and a
// recoverable error naming every source's problem otherwise.
type Reporter struct {
	logger            *zap.Logger
	failed, recovered string // log messages

	mu       sync.Mutex
	host     component.Host
	problems map[string]error
}

// New returns a Reporter that logs failed and recovered (with the source) on changes.
func New(logger *zap.Logger, failed, recovered string) *Reporter {
	return &Reporter{logger: logger, failed: failed, recovered: recovered, problems: map[string]error{}}
}

// SetHost reports OK to h and every later change.
func (s *Reporter) SetHost(h component.Host) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.host = h
	componentstatus.ReportStatus(h, componentstatus.NewEvent(componentstatus.StatusOK))
}

// Set records the problem of one source (nil clears it) and reports the aggregate.
func (s *Reporter) Set(source string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	prev, had := s.problems[source]
	switch {
	case err == nil && !had:
		return
	case err == nil:
		delete(s.problems, source)
		s.logger.Info(s.recovered, zap.String("source", source))
	case had && prev.Error() == err.Error():
		return
	default:
		s.problems[source] = err
		s.logger.Warn(s.failed, zap.String("source", source), zap.Error(err))
	}
	if s.host == nil {
		return
	}
	if len(s.problems) == 0 {
		componentstatus.ReportStatus(s.host, componentstatus.NewEvent(componentstatus.StatusOK))
		return
	}
	sources := slices.Sorted(func(yield func(string) bool) {
		for k := range s.problems {
			if !yield(k) {
				return
			}
		}
	})
	parts := make([]string, 0, len(sources))
	for _, k := range sources {
		parts = append(parts, k+": "+s.problems[k].Error())
	}
	componentstatus.ReportStatus(s.host, componentstatus.NewRecoverableErrorEvent(errors.New(strings.Join(parts, "; "))))
}

// Fatal logs err and reports it as a permanent error: the component cannot run.
func (s *Reporter) Fatal(msg string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.logger.Error(msg, zap.Error(err))
	if s.host != nil {
		componentstatus.ReportStatus(s.host, componentstatus.NewPermanentErrorEvent(err))
	}
}
