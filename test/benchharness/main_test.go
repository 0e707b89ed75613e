package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseTakesMediansPerBenchmarkAndUnit(t *testing.T) {
	defer func(p int) { gomaxprocs = p }(gomaxprocs)
	gomaxprocs = 2
	out := `goos: linux
goarch: amd64
pkg: example
BenchmarkIngest-2   	       1	 900000000 ns/op	     14000 receipts/s	     20000 verifies/s
BenchmarkIngest-2   	       1	 800000000 ns/op	     15000 receipts/s	     21000 verifies/s
BenchmarkIngest-2   	       1	 700000000 ns/op	     13000 receipts/s	     19000 verifies/s
BenchmarkPlacementLatency/bidders=8/N=50-2 	 200	 1000 ns/op	 1.5 p50-ms
PASS
`
	figs, err := parse("ledger", strings.NewReader(out))
	if err != nil {
		t.Fatal(err)
	}
	got := map[metric]Figure{}
	for _, f := range figs {
		got[metric{f.Bench, f.Unit}] = f
	}
	if f := got[metric{"BenchmarkIngest", "receipts/s"}]; f.Median != 14000 || f.Runs != 3 {
		t.Errorf("receipts/s: %+v, want median 14000 of 3 runs", f)
	}
	if f := got[metric{"BenchmarkIngest", "verifies/s"}]; f.Median != 20000 {
		t.Errorf("verifies/s: %+v", f)
	}
	if f, ok := got[metric{"BenchmarkPlacementLatency/bidders=8/N=50", "p50-ms"}]; !ok || f.Median != 1.5 {
		t.Errorf("sub-benchmark without the -GOMAXPROCS suffix: %+v (found %v)", f, ok)
	}
	if _, err := parse("x", strings.NewReader("PASS\n")); err == nil {
		t.Error("no results parsed without an error")
	}
}

func TestMedian(t *testing.T) {
	if m := median([]float64{3, 1, 2}); m != 2 {
		t.Errorf("odd: %v", m)
	}
	if m := median([]float64{4, 1, 3, 2}); m != 2.5 {
		t.Errorf("even: %v", m)
	}
}

func TestUpdateReadmeReplacesOnlyTheBlock(t *testing.T) {
	p := filepath.Join(t.TempDir(), "README.md")
	before := "# x\n\n<!-- bench:begin -->\nold figures\n<!-- bench:end -->\n\nafter\n"
	if err := os.WriteFile(p, []byte(before), 0o644); err != nil {
		t.Fatal(err)
	}
	rep := Report{Date: "2026-01-02", Machine: "m", Go: "go", Count: 3,
		Ratios: []Ratio{{Name: "P3", Value: 0.8, Goal: ">= 0.7", Met: true}},
		Goals:  []Ratio{{Name: "P1", Value: 300, Goal: "<= 250", Met: false}}}
	if err := updateReadme(p, summary(rep)); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(p)
	s := string(b)
	for _, want := range []string{"# x\n", "2026-01-02", "| P3 | 0.8× | >= 0.7 | yes |", "| P1 | 300 | <= 250 | **no** |", "<!-- bench:end -->\n\nafter\n"} {
		if !strings.Contains(s, want) {
			t.Errorf("README lacks %q:\n%s", want, s)
		}
	}
	if strings.Contains(s, "old figures") {
		t.Errorf("old figures kept:\n%s", s)
	}
	if err := updateReadme(filepath.Join(t.TempDir(), "none.md"), "x"); err == nil {
		t.Error("missing file accepted")
	}
}

// setProcs sets the GOMAXPROCS the parser assumes for the rest of the test.
func setProcs(t *testing.T, n int) {
	old := gomaxprocs
	gomaxprocs = n
	t.Cleanup(func() { gomaxprocs = old })
}

func TestParseKeepsNumericSuffixOfSubBenchmarkWithOneProc(t *testing.T) {
	// go test appends no -GOMAXPROCS suffix when GOMAXPROCS is 1 (a
	// one-CPU machine or container): a name's own trailing -N must stay.
	setProcs(t, 1)
	out := "BenchmarkSupervise50/baseline-0 \t 1\t 6035000000 ns/op\t 0.28 cpu-%-of-core\n" +
		"BenchmarkSupervise50/instances-50 \t 1\t 6186000000 ns/op\t 0.40 cpu-%-of-core\n"
	figs, err := parse("partitions-50", strings.NewReader(out))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, f := range figs {
		got[f.Bench] = true
	}
	for _, want := range []string{"BenchmarkSupervise50/baseline-0", "BenchmarkSupervise50/instances-50"} {
		if !got[want] {
			t.Errorf("no figure for %s; got %v", want, got)
		}
	}
	// With GOMAXPROCS 4, the suffix is -4 and only it is dropped.
	setProcs(t, 4)
	figs, err = parse("partitions-50", strings.NewReader(strings.ReplaceAll(out, " \t 1\t", "-4 \t 1\t")))
	if err != nil {
		t.Fatal(err)
	}
	if figs[0].Bench != "BenchmarkSupervise50/baseline-0" || figs[len(figs)-1].Bench != "BenchmarkSupervise50/instances-50" {
		t.Errorf("with GOMAXPROCS 4: %+v", figs)
	}
}

func TestEvaluateListsGoalsAndRatiosItCouldNotMeasure(t *testing.T) {
	// A run in which BenchmarkIdleRSS skipped (no WEFT_BIN) and the P3
	// baseline reported 0: P7 and that ratio must not vanish silently.
	rep := Report{Figures: []Figure{
		{Bench: "BenchmarkIngest", Unit: "receipts/s", Median: 100},
		{Bench: "BenchmarkIngest", Unit: "verifies/s", Median: 0},
		{Bench: "BenchmarkIngest", Unit: "batch-verifies/s", Median: 200},
	}}
	evaluate(&rep)
	if len(rep.Ratios) != 1 || rep.Ratios[0].Value != 0.5 || rep.Ratios[0].Met {
		t.Errorf("ratios: %+v", rep.Ratios)
	}
	want := len(ratios) + len(goals) - 1
	if len(rep.Unmeasured) != want {
		t.Fatalf("%d unmeasured, want %d: %q", len(rep.Unmeasured), want, rep.Unmeasured)
	}
	all := strings.Join(rep.Unmeasured, "\n")
	for _, s := range []string{"P7 idle node RSS: no rss-MiB of BenchmarkIdleRSS", "(crypto/ed25519, one by one): denominator is 0"} {
		if !strings.Contains(all, s) {
			t.Errorf("unmeasured lacks %q:\n%s", s, all)
		}
	}
	for name, text := range map[string]string{"markdown": markdown(rep), "summary": summary(rep)} {
		if !strings.Contains(text, "P7 idle node RSS: no rss-MiB of BenchmarkIdleRSS") {
			t.Errorf("%s does not say P7 was not measured:\n%s", name, text)
		}
	}
	// Recomputing (-from) replaces the list.
	evaluate(&rep)
	if len(rep.Unmeasured) != want {
		t.Errorf("after a second evaluate: %d unmeasured", len(rep.Unmeasured))
	}
}
