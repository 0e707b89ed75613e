package demo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

// ErrInterrupted means the run was cancelled (Ctrl-C, SIGTERM) before it
// finished.
var ErrInterrupted = errors.New("demo: interrupted")

// Outcome is what a step verified.
type Outcome struct {
	// Detail says in one line what was checked.
	Detail string
	// Lines are extra lines for people (bids, the statement).
	Lines []string
	// Data holds machine-readable facts for the step's JSON line.
	Data map[string]any
}

// Step is one stage of the demo. Run must verify what it claims and return
// an error saying what it could not verify.
type Step struct {
	// Name is short and stable; it appears in the JSON lines and the summary.
	Name string
	// Soft: a failure is recorded (the run is not OK) but the next steps
	// still run, because they do not depend on this one.
	Soft bool
	// Timeout bounds the step; 0 leaves only the run's deadline.
	Timeout time.Duration
	// Run does the step.
	Run func(ctx context.Context, s *session) (Outcome, error)
}

// reporter prints progress for people (human) and, with --json, one JSON
// line per step and the summary (machine).
type reporter struct {
	human   io.Writer
	machine io.Writer // nil without --json
}

func (r *reporter) notef(format string, args ...any) {
	fmt.Fprintf(r.human, format+"\n", args...)
}

func (r *reporter) begin(i, n int, name string) {
	fmt.Fprintf(r.human, "[%2d/%d] %s\n", i, n, name)
}

func (r *reporter) end(res StepResult) {
	dur := time.Duration(res.MS) * time.Millisecond
	switch res.Status {
	case Passed:
		fmt.Fprintf(r.human, "        ok in %s: %s\n", fmtDur(dur), res.Detail)
	default:
		fmt.Fprintf(r.human, "        FAILED after %s: %s\n", fmtDur(dur), res.Error)
	}
	for _, l := range res.Lines {
		fmt.Fprintf(r.human, "          %s\n", l)
	}
	if r.machine != nil {
		b, _ := json.Marshal(res)
		fmt.Fprintf(r.machine, "%s\n", b)
	}
}

func (r *reporter) summary(s Summary) {
	el := fmtDur(time.Duration(s.ElapsedMS) * time.Millisecond)
	if s.OK {
		fmt.Fprintf(r.human, "weft demo: all %d steps verified in %s — placement %d ms, re-placement %d ms, %d receipts, ledger root %s on every node\n",
			s.Planned, el, s.PlacementMS, s.ReplacementMS, s.Receipts, short(s.Root))
	} else {
		for _, f := range s.Failures {
			fmt.Fprintf(r.human, "weft demo: FAILED %s\n", f)
		}
		if len(s.Failures) == 0 {
			fmt.Fprintf(r.human, "weft demo: FAILED at %q: %s\n", s.FailedStep, s.Error)
		}
		fmt.Fprintf(r.human, "weft demo: %d of %d steps verified in %s\n", s.Passed, s.Planned, el)
	}
	if r.machine != nil {
		b, _ := json.Marshal(s)
		fmt.Fprintf(r.machine, "%s\n", b)
	}
}

// runStep runs one step under its timeout and turns the outcome into a result.
func runStep(ctx context.Context, i int, st Step, s *session) StepResult {
	sctx := ctx
	if st.Timeout > 0 {
		var cancel context.CancelFunc
		sctx, cancel = context.WithTimeout(ctx, st.Timeout)
		defer cancel()
	}
	t0 := time.Now()
	out, err := st.Run(sctx, s)
	res := StepResult{Index: i, Step: st.Name, MS: time.Since(t0).Milliseconds(), Detail: out.Detail, Lines: out.Lines, Data: out.Data}
	if err != nil {
		res.Status = Failed
		res.NotLanded = errors.Is(err, ErrNotLanded)
		if ctx.Err() != nil && s.interrupted() {
			err = fmt.Errorf("%w: %w", ErrInterrupted, err)
		}
		res.Error = oneLine(err.Error())
		res.Lines = append(res.Lines, moreLines(err.Error())...)
	} else {
		res.Status, res.OK = Passed, true
	}
	return res
}

// oneLine returns the first line of s.
func oneLine(s string) string {
	first, _, _ := strings.Cut(s, "\n")
	return first
}

// moreLines returns the lines of s after the first.
func moreLines(s string) []string {
	_, rest, ok := strings.Cut(s, "\n")
	if !ok || strings.TrimSpace(rest) == "" {
		return nil
	}
	return strings.Split(rest, "\n")
}

// fmtDur prints d rounded for people: 84ms, 1.84s.
func fmtDur(d time.Duration) string {
	if d < time.Second {
		return d.Round(time.Millisecond).String()
	}
	return d.Round(10 * time.Millisecond).String()
}

// short abbreviates a peer ID, CID or hash for people.
func short(id string) string {
	if len(id) <= 16 {
		return id
	}
	return id[:8] + "…" + id[len(id)-6:]
}
