package main

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// row is one client at one message size in one scenario.
type row struct {
	Scenario string // consume or publish; handler and single for the one-queue rows
	Client   string
	Label    string // shown instead of the client's name when set
	Size     int
	Runs     []childResult
	Paced    *childResult // consume: the latency phase
}

type memRow struct {
	Prefetch, N, Size int
	Res               childResult
}

type report struct {
	Env      environment
	Settings settings
	Rows     []*row
	Memory   []memRow
	Envelope []envelopeResult
	Duration time.Duration
}

var clientNames = map[string]string{
	"sub":            "Subscriber (no router)",
	"router":         "Subscriber via message.Router",
	"worker":         "Go celery.Worker via message.Router, no result backend",
	"sdk-batch":      "SDK Receive(10) + DeleteMessageBatch",
	"sdk-single":     "SDK Receive(1) + DeleteMessage",
	"kombu":          "Kombu Consumer, prefetch 10",
	"celery":         "Celery worker (solo), prefetch 10",
	"pub-batch":      "Publisher, 10 per Publish",
	"pub-single":     "Publisher, 1 per Publish ×4/queue",
	"sdk-send-batch": "SDK SendMessageBatch",
	"sdk-send":       "SDK SendMessage ×4/queue",
	"kombu-publish":  "Kombu Producer.publish",
	"celery-publish": "Celery apply_async",
}

// rate is messages/s: first to last handled for consumers (n-1 intervals), whole run for publishers.
func (r childResult) rate(consume bool) float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	if consume {
		return float64(r.N-1) / r.Elapsed
	}
	return float64(r.N) / r.Elapsed
}

func (r childResult) cpuPerMsg() float64 { return r.CPU / float64(r.N) * 1e6 }

func (r childResult) reqPerMsg() float64 { return float64(r.Requests) / float64(r.N) }

func (r childResult) summary(consume bool) string {
	return fmt.Sprintf("%.0f msg/s, %.1f µs CPU/msg, %.3f req/msg, p50 %.1f ms, p99 %.1f ms, RSS %.1f MB",
		r.rate(consume), r.cpuPerMsg(), r.reqPerMsg(), r.P50/1000, r.P99/1000, float64(r.RSSKB)/1024)
}

// stat is the median and range of a metric over the runs.
func stat(runs []childResult, f func(childResult) float64) (med, lo, hi float64) {
	v := make([]float64, len(runs))
	for i, r := range runs {
		v[i] = f(r)
	}
	return spread(v)
}

// spread sorts v and returns its median (the upper one of an even count), least and greatest.
func spread(v []float64) (med, lo, hi float64) {
	sort.Float64s(v)
	if len(v) == 0 {
		return 0, 0, 0
	}
	return v[len(v)/2], v[0], v[len(v)-1]
}

func (r *row) rate() float64 {
	m, _, _ := stat(r.Runs, func(c childResult) float64 { return c.rate(r.Scenario == "consume") })
	return m
}

func (r *row) median(f func(childResult) float64) float64 {
	m, _, _ := stat(r.Runs, f)
	return m
}

func (rep *report) find(scenario, client string, size int) *row {
	for _, r := range rep.Rows {
		if r.Scenario == scenario && r.Client == client && r.Size == size {
			return r
		}
	}
	return nil
}

func sizeLabel(size int) string {
	if size >= 1024 {
		return fmt.Sprintf("%d KB", size/1024)
	}
	return fmt.Sprintf("%d B", size)
}

func (rep *report) table(sb *strings.Builder, scenario string) {
	base := "sdk-batch"
	latHead := "end-to-end latency p50 / p99 (ms)¹"
	if scenario == "publish" {
		base = "sdk-send-batch"
		latHead = "call latency p50 / p99 (ms)²"
	}
	fmt.Fprintf(sb, "| client | size | msg/s (median) | range | CPU µs/msg | × SDK batch | requests/msg | %s | peak RSS (MB) | runs × msgs |\n", latHead)
	sb.WriteString("|---|---|--:|--:|--:|--:|--:|--:|--:|--:|\n")
	for _, r := range rep.Rows {
		if r.Scenario != scenario {
			continue
		}
		consume := scenario == "consume"
		med, lo, hi := stat(r.Runs, func(c childResult) float64 { return c.rate(consume) })
		ratio := "–"
		if b := rep.find(scenario, base, r.Size); b != nil && b.rate() > 0 {
			ratio = fmt.Sprintf("%.2f", med/b.rate())
		}
		lat := r.Runs
		if r.Paced != nil {
			lat = []childResult{*r.Paced}
		}
		p50 := stat1(lat, func(c childResult) float64 { return c.P50 / 1000 })
		p99 := stat1(lat, func(c childResult) float64 { return c.P99 / 1000 })
		mark := ""
		if r.Paced != nil && med < rep.Settings.pacedRate {
			mark = " †"
		}
		fmt.Fprintf(sb, "| %s | %s | %.0f | %.0f–%.0f | %.1f | %s | %.3f | %.1f / %.1f%s | %.1f | %d × %d |\n",
			r.name(), sizeLabel(r.Size), med, lo, hi,
			r.median(childResult.cpuPerMsg), ratio, r.median(childResult.reqPerMsg), p50, p99, mark,
			r.median(func(c childResult) float64 { return float64(c.RSSKB) / 1024 }), len(r.Runs), r.Runs[0].N)
	}
}

func stat1(runs []childResult, f func(childResult) float64) float64 {
	m, _, _ := stat(runs, f)
	return m
}

// goal is one target of the benchmarks and what was measured against it.
type goal struct {
	Name, Target, Figure string
	Met                  bool
	// Requests marks a request-count goal: the run fails when Value exceeds Limit (plus the
	// -request-slack given on the command line).
	Requests     bool
	Value, Limit float64
}

// goalLines describes every goal for the log.
func (rep *report) goalLines() []string {
	var out []string
	for _, g := range rep.goals() {
		status := "met"
		if !g.Met {
			status = "not met"
		}
		out = append(out, fmt.Sprintf("%s: %s (goal %s): %s", g.Name, g.Figure, g.Target, status))
	}
	return out
}

// missedRequestGoals lists the request-count goals missed by more than slack requests per
// message.
func (rep *report) missedRequestGoals(slack float64) []string {
	var out []string
	for _, g := range rep.goals() {
		if g.Requests && g.Value > g.Limit+slack {
			out = append(out, fmt.Sprintf("%s: %s (goal %s)", g.Name, g.Figure, g.Target))
		}
	}
	return out
}

// goals checks the figures against the goals.
func (rep *report) goals() []goal {
	var out []goal
	for i, size := range rep.Settings.sizes {
		sl := sizeLabel(size)
		if s, b := rep.find("consume", "sub", size), rep.find("consume", "sdk-batch", size); s != nil && b != nil {
			x := s.rate() / b.rate()
			out = append(out, goal{Name: "consume " + sl + ": Subscriber against the SDK batch loop (4 queues)", Target: "≥ 0.9×",
				Figure: fmt.Sprintf("%.0f vs %.0f msg/s = %.2f×", s.rate(), b.rate(), x), Met: x >= 0.9})
		}
		if s, k := rep.find("consume", "sub", size), rep.find("consume", "kombu", size); s != nil && k != nil {
			x := s.rate() / k.rate()
			out = append(out, goal{Name: "consume " + sl + ": Subscriber against the Kombu consumer", Target: "≥ 10×",
				Figure: fmt.Sprintf("%.0f vs %.0f msg/s = %.1f×", s.rate(), k.rate(), x), Met: x >= 10})
		}
		if s := rep.find("consume", "sub", size); s != nil {
			x := s.median(childResult.reqPerMsg)
			// The smaller size decides the smoke run; large responses broken off by ElasticMQ
			// add retried receives at the larger one.
			out = append(out, goal{Name: "consume " + sl + ": requests per message", Target: "≤ 0.21",
				Figure: fmt.Sprintf("%.3f", x), Met: x <= 0.21, Requests: i == 0, Value: x, Limit: 0.21})
		}
		if p, b := rep.find("publish", "pub-batch", size), rep.find("publish", "sdk-send-batch", size); p != nil && b != nil {
			x := p.rate() / b.rate()
			out = append(out, goal{Name: "publish " + sl + ": Publisher (10 per Publish) against SendMessageBatch", Target: "≥ 0.9×",
				Figure: fmt.Sprintf("%.0f vs %.0f msg/s = %.2f×", p.rate(), b.rate(), x), Met: x >= 0.9})
		}
		if p, k := rep.find("publish", "pub-batch", size), rep.find("publish", "kombu-publish", size); p != nil && k != nil {
			x := p.rate() / k.rate()
			out = append(out, goal{Name: "publish " + sl + ": Publisher against the Kombu producer", Target: "≥ 10×",
				Figure: fmt.Sprintf("%.0f vs %.0f msg/s = %.1f×", p.rate(), k.rate(), x), Met: x >= 10})
		}
		if p := rep.find("publish", "pub-batch", size); p != nil {
			x := p.median(childResult.reqPerMsg)
			out = append(out, goal{Name: "publish " + sl + ": requests per message, 10 per Publish", Target: "≤ 0.11",
				Figure: fmt.Sprintf("%.3f", x), Met: x <= 0.11})
		}
	}
	out = append(out, rep.oneQueueGoals()...)
	for _, e := range rep.Envelope {
		switch e.Name {
		case "Envelope.Encode + DecodeEnvelope":
			out = append(out, goal{Name: "envelope: " + e.Name, Target: "≤ 2 µs",
				Figure: fmt.Sprintf("%.2f µs, %d allocs", e.NsPerOp/1000, e.Allocs), Met: e.NsPerOp <= 2000})
		case "EnvelopeMarshaler Marshal + Unmarshal":
			out = append(out, goal{Name: "envelope: " + e.Name, Target: "≤ 4 µs, ≤ 20 allocs",
				Figure: fmt.Sprintf("%.2f µs, %d allocs", e.NsPerOp/1000, e.Allocs), Met: e.NsPerOp <= 4000 && e.Allocs <= 20})
		}
	}
	return out
}

func (r *row) name() string {
	if r.Label != "" {
		return r.Label
	}
	return clientNames[r.Client]
}
