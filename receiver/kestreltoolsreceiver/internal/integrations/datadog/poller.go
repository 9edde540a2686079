package datadog

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"

	cloudv1 "github.com/kestrelai/otelcol-kestrel/api/cloud/v1"
)

const (
	// perPage is the page size of the monitor list.
	perPage = 200
	// maxPages bounds one poll (10,000 monitors).
	maxPages = 50
	// maxQueued bounds the alerts kept while the cloud cannot be reached; the oldest go.
	maxQueued = 1024
)

// pollerRunning makes the monitor poller run once per process, whatever the number of
// receivers or connections.
var pollerRunning atomic.Bool

// Poller polls Datadog's monitors and sends a DatadogMonitorAlert for each state change.
// The first poll only learns the states. Its state outlives reconnects: alerts that cannot
// be sent wait (bounded) and go out once the connection is back, and nothing is sent twice.
type Poller struct {
	c        *Client
	interval time.Duration
	send     func(context.Context, proto.Message) error
	logger   *zap.Logger

	mu     sync.Mutex
	states map[int64]string // nil before the first poll
	queue  []*cloudv1.DatadogMonitorAlert
}

// NewPoller returns a poller that sends through send (the connection's Send).
func NewPoller(c *Client, interval time.Duration, send func(context.Context, proto.Message) error, logger *zap.Logger) *Poller {
	return &Poller{c: c, interval: interval, send: send, logger: logger}
}

// Start runs the poller until ctx ends; false when one already runs in this process.
func (p *Poller) Start(ctx context.Context, wg *sync.WaitGroup) bool {
	if !pollerRunning.CompareAndSwap(false, true) {
		return false
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer pollerRunning.Store(false)
		t := time.NewTicker(p.interval)
		defer t.Stop()
		last := ""
		for {
			// Each failure once, not every interval; and when it ends.
			switch err := p.Poll(ctx); {
			case ctx.Err() != nil:
			case err != nil && err.Error() != last:
				last = err.Error()
				p.logger.Warn("Polling Datadog monitors failed; retrying every interval", zap.Error(err))
			case err == nil && last != "":
				last = ""
				p.logger.Info("Polling Datadog monitors works again")
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return true
}

// monitor is what the poller reads of one monitor.
type monitor struct {
	ID           int64    `json:"id"`
	Name         string   `json:"name"`
	Type         string   `json:"type"`
	Query        string   `json:"query"`
	Message      string   `json:"message"`
	Tags         []string `json:"tags"`
	OverallState string   `json:"overall_state"`
}

// state normalises a monitor state: Ignored, Skipped and unknown ones count as unset.
func state(s string) string {
	switch s {
	case "Alert", "Warn", "OK", "No Data":
		return s
	}
	return ""
}

// Poll reads the monitors once, queues an alert per changed state and sends the queue.
func (p *Poller) Poll(ctx context.Context) error {
	mons, err := p.list(ctx)
	if err != nil {
		return err
	}
	now := p.c.now().Unix()
	p.mu.Lock()
	first := p.states == nil
	next := make(map[int64]string, len(mons))
	for _, m := range mons {
		cur := state(m.OverallState)
		next[m.ID] = cur
		prev, seen := p.states[m.ID]
		if first || !seen || prev == cur {
			continue
		}
		p.queue = append(p.queue, &cloudv1.DatadogMonitorAlert{MonitorId: strconv.FormatInt(m.ID, 10), MonitorName: m.Name,
			CurrentStatus: cur, PreviousStatus: prev, MonitorType: m.Type, Query: m.Query, Message: m.Message, Tags: m.Tags, Timestamp: now})
	}
	p.states = next
	if over := len(p.queue) - maxQueued; over > 0 {
		p.logger.Warn("Dropping Datadog monitor alerts the cloud could not be sent", zap.Int("dropped", over))
		p.queue = p.queue[over:]
	}
	p.mu.Unlock()
	return p.flush(ctx)
}

// flush sends the queued alerts in order; those not sent stay for the next poll.
func (p *Poller) flush(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	for len(p.queue) > 0 {
		if err := p.send(ctx, p.queue[0]); err != nil {
			return err
		}
		p.queue = p.queue[1:]
	}
	return nil
}

// list reads every page of monitors.
func (p *Poller) list(ctx context.Context) ([]monitor, error) {
	var all []monitor
	for page := range maxPages {
		q := url.Values{"page": {strconv.Itoa(page)}, "per_page": {strconv.Itoa(perPage)}}
		code, body, err := p.c.do(ctx, call{method: http.MethodGet, path: "/api/v1/monitor", query: q, agent: PollerUserAgent})
		if err != nil {
			return nil, err
		}
		if err := Describe(code, body); err != nil {
			return nil, err
		}
		var mons []monitor
		if err := json.Unmarshal(body, &mons); err != nil {
			return nil, err
		}
		all = append(all, mons...)
		if len(mons) < perPage {
			break
		}
	}
	return all, nil
}
