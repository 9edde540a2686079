package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// selfMetrics are the collector's own metrics as its Prometheus endpoint serves them.
type selfMetrics map[string]*dto.MetricFamily

func scrape(ctx context.Context, addr string) (selfMetrics, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", http.NoBody)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("self-metrics: %s", resp.Status)
	}
	return parseSelfMetrics(resp.Body)
}

func parseSelfMetrics(r io.Reader) (selfMetrics, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	return p.TextToMetricFamilies(r)
}

// sum adds the samples of the counter or gauge name (with or without the _total suffix the
// Prometheus exporter gives counters) whose labels include all of labels ("k=v" pairs).
func (m selfMetrics) sum(name string, labels ...string) float64 {
	var total float64
	for _, n := range []string{name, name + "_total"} {
		f := m[n]
		if f == nil {
			continue
		}
		for _, s := range f.GetMetric() {
			if !hasLabels(s.GetLabel(), labels) {
				continue
			}
			switch {
			case s.GetCounter() != nil:
				total += s.GetCounter().GetValue()
			case s.GetGauge() != nil:
				total += s.GetGauge().GetValue()
			case s.GetUntyped() != nil:
				total += s.GetUntyped().GetValue()
			}
		}
	}
	return total
}

func hasLabels(have []*dto.LabelPair, want []string) bool {
	for _, w := range want {
		k, v, _ := strings.Cut(w, "=")
		found := false
		for _, l := range have {
			found = found || (l.GetName() == k && l.GetValue() == v)
		}
		if !found {
			return false
		}
	}
	return true
}
