package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseTakesMediansPerBenchmarkAndUnit(t *testing.T) {
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
