package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"
)

// The one-queue rows: what one Subscribe call achieves with a handler that takes 50 ms (an
// I/O-bound task) at several Concurrency settings, against the ceiling of raw SDK loops on the
// same queue; and single-message Publish calls, many at once and alone, against raw loops.

// handlerDelay is the handler time of the handler rows.
const handlerDelay = "50ms"

// handlerRun is one consume configuration of the handler scenario.
type handlerRun struct {
	client, label string
	args          []string
	n, nQuick     int
	reps          int // runs in a full benchmark (one in a quick one); 0 means 1
}

// pairedReps is how many runs the configurations compared by a ratio get in a full benchmark:
// a run lasts about a second, and the machine's speed changes from one second to the next.
// Their runs alternate, and each figure is the median of its runs.
const pairedReps = 5

var handlerRuns = []handlerRun{
	{"sdk-batch", "SDK Receive(10) + DeleteMessageBatch, 1 goroutine, no handler", []string{"-goroutines", "1"}, 5000, 1000, pairedReps},
	{"sdk-batch", "SDK Receive(10) + DeleteMessageBatch, 2 goroutines, no handler", []string{"-goroutines", "2"}, 5000, 1000, pairedReps},
	{"sdk-batch", "SDK Receive(10) + DeleteMessageBatch, 4 goroutines, no handler", []string{"-goroutines", "4"}, 5000, 1000, pairedReps},
	{"router", "Router, no-op handler, default config", nil, 5000, 1000, pairedReps},
	{"router", "Router, 50 ms handler, Concurrency 1", []string{"-handler", handlerDelay, "-concurrency", "1"}, 100, 40, 1},
	{"router", "Router, 50 ms handler, Concurrency 4", []string{"-handler", handlerDelay, "-concurrency", "4"}, 400, 160, 1},
	{"router", "Router, 50 ms handler, default config (Concurrency 16)", []string{"-handler", handlerDelay}, 2000, 500, 1},
	{"router", "Router, 50 ms handler, Concurrency 64", []string{"-handler", handlerDelay, "-concurrency", "64"}, 5000, 1500, 1},
	// The raw ceiling for that handler: SDK loops whose received messages are handled at once,
	// 64 at most (7 loops keep 64 handlers busy), each batch deleted once handled.
	{"sdk-batch", "SDK Receive(10) + DeleteMessageBatch, 7 goroutines, 50 ms handler, 64 at once", []string{"-goroutines", "7", "-handler", handlerDelay, "-concurrency", "64"}, 5000, 1500, 1},
}

// singleRun is one publish configuration of the single-message scenario.
type singleRun struct {
	client, label string
	conc          int
	n, nQuick     int
	reps          int
}

var singleRuns = []singleRun{
	{"pub-single", "Publisher, 1 per Publish, 16 goroutines", 16, 5000, 1000, pairedReps},
	{"sdk-send-batch", "SDK SendMessageBatch, 1 goroutine", 1, 5000, 1000, pairedReps},
	{"pub-single", "Publisher, 1 per Publish, alone", 1, 1000, 300, 1},
	{"sdk-send", "SDK SendMessage, alone", 1, 1000, 300, 1},
}

// oneQueueRows runs the handler and single-publish scenarios at the smaller size; the runs
// of the repeated configurations take turns.
func (b *bench) oneQueueRows(ctx context.Context, rep *report) error {
	size := b.s.sizes[0]
	reps := func(r int) int {
		if b.s.quick || r < 1 {
			return 1
		}
		return r
	}
	count := func(n, nQuick int) int {
		if b.s.quick {
			return nQuick
		}
		return n
	}
	handlerRows := make([]*row, len(handlerRuns))
	for i, hr := range handlerRuns {
		handlerRows[i] = &row{Scenario: "handler", Client: hr.client, Label: hr.label, Size: size}
		rep.Rows = append(rep.Rows, handlerRows[i])
	}
	err := takeTurns(len(handlerRuns), func(i int) int { return reps(handlerRuns[i].reps) }, func(i, _ int) error {
		hr := handlerRuns[i]
		n := count(hr.n, hr.nQuick)
		args := append([]string{"-client", hr.client, "-n", strconv.Itoa(n)}, hr.args...)
		return b.oneQueueRun(ctx, handlerRows[i], n, size, args...)
	})
	if err != nil {
		return err
	}
	singleRows := make([]*row, len(singleRuns))
	for i, sr := range singleRuns {
		singleRows[i] = &row{Scenario: "single", Client: sr.client, Label: sr.label, Size: size}
		rep.Rows = append(rep.Rows, singleRows[i])
	}
	return takeTurns(len(singleRuns), func(i int) int { return reps(singleRuns[i].reps) }, func(i, _ int) error {
		sr := singleRuns[i]
		return b.oneQueueRun(ctx, singleRows[i], 0, size, "-client", sr.client,
			"-n", strconv.Itoa(count(sr.n, sr.nQuick)), "-size", strconv.Itoa(size), "-conc", strconv.Itoa(sr.conc))
	})
}

// oneQueueRun runs a Go client with args on a fresh queue, filled first with fill messages of
// size bytes when fill is above 0, and adds the run to r.
func (b *bench) oneQueueRun(ctx context.Context, r *row, fill, size int, args ...string) error {
	qs, err := b.queueSet(ctx, 1)
	if err != nil {
		return err
	}
	if fill > 0 {
		if err := b.broker.send(ctx, qs, fill, size, 0); err != nil {
			return err
		}
	}
	res, err := b.runGo(ctx, nil, append([]string{"-endpoint", b.backend, "-queues", qs[0]}, args...)...)
	b.broker.remove(ctx, qs)
	if err != nil {
		return fmt.Errorf("%s: %w", r.Label, err)
	}
	b.logf("%-7s %-60s %s", r.Scenario, r.Label, res.summary(r.Scenario == "handler"))
	r.Runs = append(r.Runs, res)
	return nil
}

// findLabel returns the row of a scenario with that label.
func (rep *report) findLabel(scenario, label string) *row {
	for _, r := range rep.Rows {
		if r.Scenario == scenario && r.Label == label {
			return r
		}
	}
	return nil
}

// rawCeiling is the best of the raw SDK loops on one queue.
func (rep *report) rawCeiling() *row {
	var best *row
	for _, r := range rep.Rows {
		if r.Scenario == "handler" && r.Client == "sdk-batch" && !strings.Contains(r.Label, "handler,") && (best == nil || r.rate() > best.rate()) {
			best = r
		}
	}
	return best
}

// oneQueueTable renders the rows of the handler or single scenario.
func (rep *report) oneQueueTable(sb *strings.Builder, scenario string) {
	consume := scenario == "handler"
	ref := rep.rawCeiling()
	refHead := "× raw ceiling"
	latHead := "end-to-end latency p50 / p99 (ms)"
	if !consume {
		ref = rep.findLabel("single", singleRuns[1].label)
		refHead = "× SDK SendMessageBatch"
		latHead = "call latency p50 / p99 (ms)"
	}
	fmt.Fprintf(sb, "| client | msg/s | CPU µs/msg | %s | requests/msg | %s | runs × msgs |\n|---|--:|--:|--:|--:|--:|--:|\n", refHead, latHead)
	for _, r := range rep.Rows {
		if r.Scenario != scenario {
			continue
		}
		ratio := "–"
		if ref != nil && ref.rate() > 0 {
			ratio = fmt.Sprintf("%.2f", r.rate()/ref.rate())
		}
		lat := "–" // not measured: the queue was filled first
		if p50, p99 := r.median(func(c childResult) float64 { return c.P50 / 1000 }), r.median(func(c childResult) float64 { return c.P99 / 1000 }); p99 > 0 {
			lat = fmt.Sprintf("%.1f / %.1f", p50, p99)
		}
		fmt.Fprintf(sb, "| %s | %.0f | %.1f | %s | %.3f | %s | %d × %d |\n", r.name(), r.rate(),
			r.median(childResult.cpuPerMsg), ratio, r.median(childResult.reqPerMsg), lat, len(r.Runs), r.Runs[0].N)
	}
}

// oneQueueGoals checks the one-queue figures.
func (rep *report) oneQueueGoals() []goal {
	var out []goal
	ceiling := rep.rawCeiling()
	if r := rep.findLabel("handler", handlerRuns[6].label); r != nil {
		x := r.rate()
		out = append(out, goal{Name: "Router + 50 ms handler, default config, one Subscribe", Target: "≥ 150 msg/s",
			Figure: fmt.Sprintf("%.0f msg/s", x), Met: x >= 150})
	}
	if r, raw := rep.findLabel("handler", handlerRuns[7].label), rep.findLabel("handler", handlerRuns[8].label); r != nil && raw != nil {
		// 64 handlers of 50 ms cannot pass 1280 msg/s, however fast the queue: the ceiling is
		// a raw SDK loop running the same handler 64 at a time.
		x := r.rate() / raw.rate()
		bound := 64 / 0.050
		out = append(out, goal{Name: "Router + 50 ms handler, Concurrency 64, against raw SDK loops running that handler 64 at once", Target: "≥ 0.8×",
			Figure: fmt.Sprintf("%.0f vs %.0f msg/s = %.2f× (64 handlers × 20/s bound both at %.0f msg/s)",
				r.rate(), raw.rate(), x, bound), Met: x >= 0.8})
	}
	consumeRate := func(c childResult) float64 { return c.rate(true) }
	publishRate := func(c childResult) float64 { return c.rate(false) }
	if r := rep.findLabel("handler", handlerRuns[3].label); r != nil && ceiling != nil {
		x, per := pairedRatio(r, ceiling, consumeRate)
		out = append(out, goal{Name: "Router + no-op handler, default config, against the best raw SDK loop on the queue", Target: "≥ 0.9×",
			Figure: fmt.Sprintf("%.0f vs %.0f msg/s (medians); per pass %s: %.2f×", r.rate(), ceiling.rate(), per, x), Met: x >= 0.9})
		c, per := pairedRatio(r, ceiling, childResult.cpuPerMsg)
		out = append(out, goal{Name: "Router + no-op handler: client CPU per message against that loop's", Target: "≤ 1.2×",
			Figure: fmt.Sprintf("%.1f vs %.1f µs (medians); per pass %s: %.2f×", r.median(childResult.cpuPerMsg), ceiling.median(childResult.cpuPerMsg), per, c), Met: c <= 1.2})
	}
	if r, b := rep.findLabel("single", singleRuns[0].label), rep.findLabel("single", singleRuns[1].label); r != nil {
		x := r.median(childResult.reqPerMsg)
		out = append(out, goal{Name: "16 goroutines, one message per Publish: requests per message", Target: "≤ 0.15",
			Figure: fmt.Sprintf("%.3f", x), Met: x <= 0.15, Requests: true, Value: x, Limit: 0.15})
		if b != nil {
			y, per := pairedRatio(r, b, publishRate)
			out = append(out, goal{Name: "16 goroutines, one message per Publish, against a raw SendMessageBatch loop", Target: "≥ 0.9×",
				Figure: fmt.Sprintf("%.0f vs %.0f msg/s (medians); per pass %s: %.2f×", r.rate(), b.rate(), per, y), Met: y >= 0.9})
		}
	}
	if r, b := rep.findLabel("single", singleRuns[2].label), rep.findLabel("single", singleRuns[3].label); r != nil && b != nil {
		p, q := r.median(func(c childResult) float64 { return c.P50 / 1000 }), b.median(func(c childResult) float64 { return c.P50 / 1000 })
		out = append(out, goal{Name: "A lone caller's Publish latency p50, against SendMessage", Target: "within 1 ms",
			Figure: fmt.Sprintf("%.2f vs %.2f ms", p, q), Met: p-q <= 1})
	}
	return out
}

// pairedRatio compares two configurations whose runs took turns: run i of each came in the
// same pass, seconds apart, so the ratio within a pass is free of the machine's changing
// speed, which moves by up to 2× within minutes. It returns the median of the per-pass
// ratios f(a)/f(b), and those ratios as text.
func pairedRatio(a, b *row, f func(childResult) float64) (float64, string) {
	n := min(len(a.Runs), len(b.Runs))
	ratios := make([]float64, 0, n)
	texts := make([]string, 0, n)
	for i := 0; i < n; i++ {
		if d := f(b.Runs[i]); d > 0 {
			ratios = append(ratios, f(a.Runs[i])/d)
			texts = append(texts, fmt.Sprintf("%.2f", ratios[len(ratios)-1]))
		}
	}
	if len(ratios) == 0 {
		return 0, "–"
	}
	med, _, _ := spread(ratios)
	return med, strings.Join(texts, ", ")
}
