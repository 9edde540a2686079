package main

import (
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
)

// header describes where and how the results were measured.
type header struct {
	command             string
	date, commit, goVer string
	cpus                int
	cpuModel            string
	loadStart, loadEnd  string
	short               bool
}

func (r result) perHundredK() (float64, bool) {
	if r.sent == 0 {
		return 0, false
	}
	return r.cpu.Seconds() / float64(r.sent) * 1e5, true
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

// span formats the range of vals ("1.19–1.20", or one value when they agree at that
// precision).
func span(vals []float64, prec int) string {
	if len(vals) == 0 {
		return "—"
	}
	lo, hi := strconv.FormatFloat(slices.Min(vals), 'f', prec, 64), strconv.FormatFloat(slices.Max(vals), 'f', prec, 64)
	if lo == hi {
		return lo
	}
	return lo + "–" + hi
}

func median(vals []float64) float64 {
	s := slices.Sorted(slices.Values(vals))
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// stats are one scenario's figures over its runs.
type stats struct {
	rate, cpu100k, cpu, rss []float64
	sent, delivered         int64
	reconnects              int64
	failed                  int
	lossless                bool
}

func collect(results []result, name string) stats {
	s := stats{lossless: true, reconnects: -1}
	for _, r := range results {
		if r.scenario != name {
			continue
		}
		if r.err != nil {
			s.failed++
		}
		if v, ok := r.perHundredK(); ok {
			s.cpu100k = append(s.cpu100k, v)
			s.rate = append(s.rate, float64(r.sent)/r.load.Seconds())
		}
		s.cpu = append(s.cpu, r.cpu.Seconds())
		s.rss = append(s.rss, mib(r.peakRSS))
		s.sent += r.sent
		s.delivered += r.delivered
		s.lossless = s.lossless && r.delivered == r.sent
		if r.reconnects >= 0 {
			s.reconnects = max(s.reconnects, 0) + r.reconnects
		}
	}
	return s
}

func thousands(n int64) string {
	s := strconv.FormatInt(n, 10)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// writeReport writes the summary table (one row per scenario, ranges over its runs, ratios
// against the baseline measured in the same run) and every run's figures, as Markdown.
func writeReport(w io.Writer, h header, scs []*scenario, results []result) {
	fmt.Fprintf(w, "Command: `%s`\n\n", h.command)
	fmt.Fprintf(w, "| Field | Value |\n|---|---|\n")
	fmt.Fprintf(w, "| Date | %s |\n| Commit | %s |\n| Harness Go | %s |\n", h.date, h.commit, h.goVer)
	fmt.Fprintf(w, "| CPU | %s, %d CPUs |\n| Load average (1, 5, 15 min) at start / end | %s / %s |\n", h.cpuModel, h.cpus, h.loadStart, h.loadEnd)
	if h.short {
		fmt.Fprintf(w, "| Mode | short (-short) |\n")
	}
	fmt.Fprintln(w)
	writeInventoryReport(w, scs, results)
	var loads []*scenario
	for _, sc := range scs {
		if sc.inventoryPods == 0 {
			loads = append(loads, sc)
		}
	}
	if len(loads) == 0 {
		return
	}
	scs = loads
	fmt.Fprintln(w, "| Scenario | Items/s sent | CPU-s per 100k items | CPU-s | Peak RSS (MiB) | Delivered / sent | Reconnects | vs baseline (CPU, RSS) |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|")
	for _, sc := range scs {
		s := collect(results, sc.name)
		delivered := "all"
		switch {
		case sc.items == "":
			delivered = "—"
		case !s.lossless:
			delivered = thousands(s.delivered) + " of " + thousands(s.sent)
		}
		if s.failed > 0 {
			delivered += fmt.Sprintf(" (%d failed)", s.failed)
		}
		reconnects := "—"
		if s.reconnects >= 0 {
			reconnects = strconv.FormatInt(s.reconnects, 10)
		}
		vs := "—"
		if sc.baseline != "" {
			b := collect(results, sc.baseline)
			if len(b.cpu100k) > 0 && len(s.cpu100k) > 0 {
				vs = fmt.Sprintf("%.2f×, %.2f×", median(s.cpu100k)/median(b.cpu100k), median(s.rss)/median(b.rss))
			}
		}
		rate := "—"
		if len(s.rate) > 0 {
			rate = span(s.rate, 0)
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %s | %s |\n", sc.name, rate, span(s.cpu100k, 2), span(s.cpu, 1), span(s.rss, 0), delivered, reconnects, vs)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| Scenario | Run | Load (s) | Sent | Delivered | CPU-s | CPU-s per 100k | Peak RSS (MiB) | Reconnects | Error |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|---|")
	for _, r := range results {
		if r.inv != nil {
			continue
		}
		per := "—"
		if v, ok := r.perHundredK(); ok {
			per = strconv.FormatFloat(v, 'f', 3, 64)
		}
		rec := "—"
		if r.reconnects >= 0 {
			rec = strconv.FormatInt(r.reconnects, 10)
		}
		errText := ""
		if r.err != nil {
			errText = strings.ReplaceAll(r.err.Error(), "\n", "; ")
		}
		fmt.Fprintf(w, "| %s | %d | %.1f | %s | %s | %.2f | %s | %.1f | %s | %s |\n", r.scenario, r.run, r.load.Seconds(),
			thousands(r.sent), thousands(r.delivered), r.cpu.Seconds(), per, mib(r.peakRSS), rec, errText)
	}
}
