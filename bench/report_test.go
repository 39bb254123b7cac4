package main

import "testing"

// TestPairedRatio: runs that took turns are compared pass by pass. With the figures of a run
// in which the machine sped up between passes, the ratio of the medians (8519/10401 = 0.82)
// mixes passes; the median of the per-pass ratios (0.88, 0.78, 0.99) does not.
func TestPairedRatio(t *testing.T) {
	runs := func(rates ...float64) *row {
		r := &row{Scenario: "single"}
		for _, x := range rates {
			r.Runs = append(r.Runs, childResult{N: 10000, Elapsed: 10000 / x})
		}
		return r
	}
	pub, raw := runs(7321, 8519, 10334), runs(8306, 10963, 10401)
	got, per := pairedRatio(pub, raw, func(c childResult) float64 { return c.rate(false) })
	if per != "0.88, 0.78, 0.99" {
		t.Fatalf("per-pass ratios %q", per)
	}
	if got < 0.879 || got > 0.883 {
		t.Fatalf("median of the per-pass ratios = %.3f, want 0.881", got)
	}
	if _, per := pairedRatio(pub, &row{}, func(c childResult) float64 { return c.rate(false) }); per != "–" {
		t.Fatalf("no runs to compare with: %q", per)
	}
}
