package kestrelcommand // import "github.com/kestrelai/otelcol-kestrel/extension/kestrelcommand"

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"unicode"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componentstatus"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/kestrelai/otelcol-kestrel/internal/cloudconn"
)

// statusTracker folds everything that affects health into one component status:
// StatusOK only when the connection is Ready, the TLS files load, no stream stalled recently and every side stream
// is open (or knowingly falls back to StreamData); otherwise RecoverableError naming the
// reason. It reports only changes.
type statusTracker struct {
	mu       sync.Mutex
	host     component.Host
	ready    bool
	connErr  error
	certErr  error
	stallErr error
	sideErrs map[cloudconn.Stream]error
	last     string
}

func (t *statusTracker) setHost(host component.Host) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.host = host
}

func (t *statusTracker) connected() {
	t.update(func() { t.ready, t.connErr, t.sideErrs = true, nil, nil })
}

func (t *statusTracker) disconnected(err error) {
	t.update(func() { t.ready, t.connErr, t.sideErrs = false, err, nil })
}

func (t *statusTracker) certificate(err error) {
	t.update(func() { t.certErr = err })
}

// stalled records (or, with nil, clears) a stream that stopped making progress. It outlives
// the recycled connection until a later session has run cleanly for a while.
func (t *statusTracker) stalled(err error) {
	t.update(func() { t.stallErr = err })
}

func (t *statusTracker) sideStream(s cloudconn.Stream, err error) {
	t.update(func() {
		if err == nil {
			delete(t.sideErrs, s)
			return
		}
		if t.sideErrs == nil {
			t.sideErrs = map[cloudconn.Stream]error{}
		}
		t.sideErrs[s] = err
	})
}

func (t *statusTracker) update(change func()) {
	t.mu.Lock()
	defer t.mu.Unlock()
	change()
	if t.host == nil {
		return
	}
	ev := t.event()
	key := ev.Status().String() + t.disconnectKey()
	if ev.Err() != nil && t.ready {
		key += ev.Err().Error()
	}
	if key == t.last {
		return
	}
	t.last = key
	componentstatus.ReportStatus(t.host, ev)
}

// disconnectKey is what makes a new disconnected status worth reporting. Transport
// failures (Unavailable) count as one reason whatever their text: each reconnect attempt
// names other ports or fails a little differently (EOF, reset), and a new event for each
// would restart the health_check's recovery_duration for ever, keeping a lasting outage
// "healthy". TLS failures, though they are Unavailable too, and other errors
// (authentication, renewal) are reported as they change: they tell what to fix.
func (t *statusTracker) disconnectKey() string {
	if t.ready {
		return ""
	}
	key := "disconnected"
	if t.connErr != nil {
		key += status.Code(t.connErr).String()
		if msg := t.connErr.Error(); status.Code(t.connErr) != codes.Unavailable || strings.Contains(msg, "tls: ") || strings.Contains(msg, "x509: ") {
			key += strings.Map(func(r rune) rune {
				if unicode.IsDigit(r) {
					return -1 // ports and durations differ from attempt to attempt
				}
				return r
			}, msg)
		}
	}
	if t.certErr != nil {
		key += t.certErr.Error()
	}
	if t.stallErr != nil {
		key += "stalled"
	}
	return key
}

func (t *statusTracker) event() *componentstatus.Event {
	var errs []error
	if !t.ready {
		err := t.connErr
		if err == nil {
			err = errors.New("not connected yet")
		}
		errs = append(errs, fmt.Errorf("disconnected from Kestrel Cloud: %w", err))
	}
	if t.certErr != nil {
		errs = append(errs, fmt.Errorf("new TLS files rejected, still using the previous certificate: %w", t.certErr))
	}
	if t.stallErr != nil {
		errs = append(errs, t.stallErr)
	}
	streams := make([]cloudconn.Stream, 0, len(t.sideErrs))
	for s := range t.sideErrs {
		streams = append(streams, s)
	}
	slices.Sort(streams)
	for _, s := range streams {
		errs = append(errs, fmt.Errorf("stream %s down, its payloads go on StreamData while it reconnects: %w", s, t.sideErrs[s]))
	}
	if len(errs) == 0 {
		return componentstatus.NewEvent(componentstatus.StatusOK)
	}
	return componentstatus.NewRecoverableErrorEvent(errors.Join(errs...))
}
