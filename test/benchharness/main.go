// Command benchharness runs weft's benchmarks — Go benchmarks of every
// package plus the grid benchmarks in package test — and reports medians and
// the ratios the brief asks for, each against a baseline measured in the same
// run. `make bench` runs it.
//
// Usage:
//
//	go run ./test/benchharness [-count 5] [-only REGEXP] [-out bench-results.json] [-md FILE] [-readme README.md]
//
// Every suite is `go test -run=^$ -bench=...` on one package; results are
// parsed with golang.org/x/perf/benchfmt. A figure is the median of -count
// runs. Ratios divide two medians from the same run, so a slow or busy machine
// moves both sides together.
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	"golang.org/x/perf/benchfmt"
)

// suite is one `go test -bench` invocation.
type suite struct {
	Name      string   // short name shown in reports
	Pkg       string   // package path relative to the module root
	Bench     string   // -bench regexp
	Benchtime string   // -benchtime, e.g. "1x" or "2s"
	Env       []string // extra environment
	Timeout   string   // -timeout
	Count     int      // runs, when not -count (slow suites)
}

// goal checks one median against an absolute bound from the brief.
type goal struct {
	Name     string
	M        metric
	Goal     string
	Min, Max float64
}

// ratio divides the median of one metric by another from the same run.
type ratio struct {
	Name     string // what it measures
	Num, Den metric // numerator and denominator
	Goal     string // the brief's goal, in words
	Min, Max float64
}

// metric names one benchmark's unit, e.g. {"BenchmarkIngest", "receipts/s"}.
type metric struct{ Bench, Unit string }

// Figure is one median in the report.
type Figure struct {
	Suite  string  `json:"suite"`
	Bench  string  `json:"bench"`
	Unit   string  `json:"unit"`
	Median float64 `json:"median"`
	Runs   int     `json:"runs"`
}

// Ratio is one computed ratio in the report.
type Ratio struct {
	Name  string  `json:"name"`
	Value float64 `json:"value"`
	Goal  string  `json:"goal"`
	Met   bool    `json:"met"`
}

// Report is what -out holds.
type Report struct {
	Date    string   `json:"date"`
	Machine string   `json:"machine"`
	Go      string   `json:"go"`
	Count   int      `json:"count"`
	Figures []Figure `json:"figures"`
	Ratios  []Ratio  `json:"ratios"`
	Goals   []Ratio  `json:"goals"`
	Skipped []string `json:"skipped,omitempty"`
	// Unmeasured names each ratio or goal that could not be computed from
	// this run's figures (a metric missing, e.g. a benchmark that skipped,
	// or a zero denominator), so that it does not silently vanish from the
	// tables.
	Unmeasured []string `json:"unmeasured,omitempty"`
}

func main() {
	count := flag.Int("count", 5, "runs per benchmark; figures are medians")
	only := flag.String("only", "", "run only suites whose name matches this regexp")
	out := flag.String("out", "bench-results.json", "write the JSON report here")
	md := flag.String("md", "", "also write the markdown report here")
	from := flag.String("from", "", "run nothing: recompute ratios and goals from this JSON report and print it (with -readme, -md, -out)")
	readme := flag.String("readme", "", "also put the ratio and goal tables between the bench:begin/bench:end markers of this file (README.md)")
	flag.Parse()

	var onlyRE *regexp.Regexp
	if *only != "" {
		onlyRE = regexp.MustCompile(*only)
	}
	rep := Report{
		Date:    time.Now().UTC().Format("2006-01-02"),
		Machine: machine(),
		Go:      runtime.Version(),
		Count:   *count,
	}
	if *from != "" {
		b, err := os.ReadFile(*from)
		if err == nil {
			err = json.Unmarshal(b, &rep)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
	for _, s := range suites {
		if *from != "" {
			break
		}
		if onlyRE != nil && !onlyRE.MatchString(s.Name) {
			continue
		}
		fmt.Fprintf(os.Stderr, "== %s (%s, -bench %s)\n", s.Name, s.Pkg, s.Bench)
		n := *count
		if s.Count > 0 && s.Count < n {
			n = s.Count
		}
		figs, err := runSuite(s, n)
		if err != nil {
			fmt.Fprintf(os.Stderr, "   skipped: %v\n", err)
			rep.Skipped = append(rep.Skipped, s.Name+": "+err.Error())
			continue
		}
		for _, f := range figs {
			fmt.Fprintf(os.Stderr, "   %-60s %14.4g %s\n", f.Bench, f.Median, f.Unit)
		}
		rep.Figures = append(rep.Figures, figs...)
	}
	evaluate(&rep)
	text := markdown(rep)
	fmt.Print(text)
	if *md != "" {
		if err := os.WriteFile(*md, []byte(text), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
	if *readme != "" {
		if err := updateReadme(*readme, summary(rep)); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
	b, _ := json.MarshalIndent(rep, "", "  ")
	if err := os.WriteFile(*out, append(b, '\n'), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// evaluate computes the ratios and goals from the report's figures
// (replacing any it held).
func evaluate(rep *Report) {
	medians := map[metric]float64{}
	for _, f := range rep.Figures {
		medians[metric{f.Bench, f.Unit}] = f.Median
	}
	rep.Ratios, rep.Goals, rep.Unmeasured = nil, nil, nil
	missing := func(name string, ms ...metric) {
		var why []string
		for _, m := range ms {
			if _, ok := medians[m]; !ok {
				why = append(why, fmt.Sprintf("no %s of %s", m.Unit, m.Bench))
			}
		}
		if len(why) == 0 {
			why = append(why, "denominator is 0")
		}
		rep.Unmeasured = append(rep.Unmeasured, name+": "+strings.Join(why, ", "))
	}
	for _, r := range ratios {
		n, okN := medians[r.Num]
		d, okD := medians[r.Den]
		if !okN || !okD || d == 0 {
			missing(r.Name, r.Num, r.Den)
			continue
		}
		v := n / d
		met := (r.Min == 0 || v >= r.Min) && (r.Max == 0 || v <= r.Max)
		rep.Ratios = append(rep.Ratios, Ratio{Name: r.Name, Value: v, Goal: r.Goal, Met: met})
	}
	for _, g := range goals {
		v, ok := medians[g.M]
		if !ok {
			missing(g.Name, g.M)
			continue
		}
		met := (g.Min == 0 || v >= g.Min) && (g.Max == 0 || v <= g.Max)
		rep.Goals = append(rep.Goals, Ratio{Name: g.Name, Value: v, Goal: g.Goal, Met: met})
	}
}

func runSuite(s suite, count int) ([]Figure, error) {
	if _, err := os.Stat(strings.TrimPrefix(s.Pkg, "./")); err != nil {
		return nil, fmt.Errorf("package %s not present", s.Pkg)
	}
	args := []string{"test", "-run=^$", "-bench=" + s.Bench, fmt.Sprintf("-count=%d", count), "-benchmem"}
	if s.Benchtime != "" {
		args = append(args, "-benchtime="+s.Benchtime)
	}
	timeout := s.Timeout
	if timeout == "" {
		timeout = "30m"
	}
	args = append(args, "-timeout="+timeout, s.Pkg)
	cmd := exec.Command("go", args...)
	cmd.Env = append(os.Environ(), s.Env...)
	var stdout bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("go %s: %w\n%s", strings.Join(args, " "), err, tail(stdout.String(), 2000))
	}
	return parse(s.Name, &stdout)
}

func parse(suiteName string, r io.Reader) ([]Figure, error) {
	type key struct{ bench, unit string }
	vals := map[key][]float64{}
	var order []key
	rd := benchfmt.NewReader(r, suiteName)
	for rd.Scan() {
		res, ok := rd.Result().(*benchfmt.Result)
		if !ok {
			continue
		}
		// Drop the -GOMAXPROCS suffix so runs on different machines compare.
		// go test appends it only when GOMAXPROCS > 1, so a trailing -N is
		// stripped only when it is that suffix: with GOMAXPROCS=1,
		// "Supervise50/instances-50" is the whole name.
		name := strings.TrimSuffix(string(res.Name.Full()), gomaxprocsSuffix())
		for _, v := range res.Values {
			k := key{"Benchmark" + name, v.Unit}
			if _, seen := vals[k]; !seen {
				order = append(order, k)
			}
			vals[k] = append(vals[k], v.Value)
		}
	}
	if err := rd.Err(); err != nil {
		return nil, err
	}
	if len(order) == 0 {
		return nil, fmt.Errorf("no benchmark results")
	}
	figs := make([]Figure, 0, len(order))
	for _, k := range order {
		figs = append(figs, Figure{Suite: suiteName, Bench: k.bench, Unit: k.unit, Median: median(vals[k]), Runs: len(vals[k])})
	}
	return figs, nil
}

// gomaxprocs is the GOMAXPROCS the benchmarks run with: the harness's own,
// since `go test` inherits its environment and machine.
var gomaxprocs = runtime.GOMAXPROCS(0)

// gomaxprocsSuffix is what go test appends to every benchmark name: "-N"
// for GOMAXPROCS N > 1, nothing for 1.
func gomaxprocsSuffix() string {
	if gomaxprocs <= 1 {
		return ""
	}
	return "-" + strconv.Itoa(gomaxprocs)
}

func median(v []float64) float64 {
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

func markdown(rep Report) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# weft benchmarks — %s\n\nMachine: %s; %s; medians of %d runs.\n\n", rep.Date, rep.Machine, rep.Go, rep.Count)
	if len(rep.Ratios) > 0 {
		b.WriteString("| ratio (same run) | value | goal | met |\n|---|---|---|---|\n")
		for _, r := range rep.Ratios {
			fmt.Fprintf(&b, "| %s | %.3g | %s | %v |\n", r.Name, r.Value, r.Goal, r.Met)
		}
		b.WriteString("\n")
	}
	if len(rep.Goals) > 0 {
		b.WriteString("| goal (median) | value | goal | met |\n|---|---|---|---|\n")
		for _, r := range rep.Goals {
			fmt.Fprintf(&b, "| %s | %.4g | %s | %v |\n", r.Name, r.Value, r.Goal, r.Met)
		}
		b.WriteString("\n")
	}
	b.WriteString("| suite | benchmark | median | unit |\n|---|---|---|---|\n")
	for _, f := range rep.Figures {
		if f.Unit == "B/op" || f.Unit == "allocs/op" {
			continue
		}
		fmt.Fprintf(&b, "| %s | %s | %.4g | %s |\n", f.Suite, strings.TrimPrefix(f.Bench, "Benchmark"), f.Median, f.Unit)
	}
	for _, s := range rep.Skipped {
		fmt.Fprintf(&b, "\nskipped: %s\n", s)
	}
	for _, s := range rep.Unmeasured {
		fmt.Fprintf(&b, "\nnot measured: %s\n", s)
	}
	return b.String()
}

func machine() string {
	cpu := "unknown cpu"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(line, "model name") {
				if i := strings.Index(line, ":"); i >= 0 {
					cpu = strings.TrimSpace(line[i+1:])
				}
				break
			}
		}
	}
	return fmt.Sprintf("%s/%s, %d cores, %s", runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), cpu)
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[len(s)-n:]
}

// summary is the part of the report the README shows: date, machine, and
// the ratio and goal tables.
func summary(rep Report) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Measured by `make bench` on %s — %s; %s; medians of %d runs (some slow suites fewer).\n\n", rep.Date, rep.Machine, rep.Go, rep.Count)
	b.WriteString("| measure | median | goal | met |\n|---|---|---|---|\n")
	for _, r := range rep.Ratios {
		fmt.Fprintf(&b, "| %s | %.3g× | %s | %s |\n", r.Name, r.Value, r.Goal, yesNo(r.Met))
	}
	for _, r := range rep.Goals {
		fmt.Fprintf(&b, "| %s | %.4g | %s | %s |\n", r.Name, r.Value, r.Goal, yesNo(r.Met))
	}
	for _, s := range rep.Skipped {
		fmt.Fprintf(&b, "\nNot measured in this run: %s\n", firstLine(s))
	}
	for _, s := range rep.Unmeasured {
		fmt.Fprintf(&b, "\nNot measured in this run: %s\n", s)
	}
	return b.String()
}

func yesNo(ok bool) string {
	if ok {
		return "yes"
	}
	return "**no**"
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// updateReadme replaces what lies between the bench markers of file.
func updateReadme(file, text string) error {
	const begin, end = "<!-- bench:begin -->", "<!-- bench:end -->"
	b, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	s := string(b)
	i, j := strings.Index(s, begin), strings.Index(s, end)
	if i < 0 || j < i {
		return fmt.Errorf("%s: no %s ... %s block", file, begin, end)
	}
	s = s[:i+len(begin)] + "\n" + text + s[j:]
	return os.WriteFile(file, []byte(s), 0o644)
}
