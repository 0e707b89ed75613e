package demo

import (
	"fmt"
	"time"
)

// Status is how a step ended.
type Status int

const (
	// Skipped: the step did not run (an earlier step failed, or the run was
	// interrupted).
	Skipped Status = iota
	// Passed: the step ran and verified its result.
	Passed
	// Failed: the step ran and could not verify its result.
	Failed
)

// String returns "skipped", "passed" or "failed".
func (s Status) String() string {
	switch s {
	case Passed:
		return "passed"
	case Failed:
		return "failed"
	case Skipped:
		return "skipped"
	}
	return fmt.Sprintf("Status(%d)", int(s))
}

// MarshalText encodes the status as its name.
func (s Status) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText decodes a status name.
func (s *Status) UnmarshalText(b []byte) error {
	switch string(b) {
	case "passed":
		*s = Passed
	case "failed":
		*s = Failed
	case "skipped":
		*s = Skipped
	default:
		return fmt.Errorf("demo: unknown step status %q", b)
	}
	return nil
}

// StepResult is one step's result; with --json each is printed as one line.
type StepResult struct {
	// Index is the step's position, from 1.
	Index int `json:"index"`
	// Step is the step's name.
	Step string `json:"step"`
	// Status says whether the step passed, failed or did not run.
	Status Status `json:"status"`
	// OK is Status == Passed (for readers that only want a bool).
	OK bool `json:"ok"`
	// MS is how long the step took, in milliseconds.
	MS int64 `json:"ms"`
	// Detail is what was verified, in one line.
	Detail string `json:"detail,omitempty"`
	// Error says what could not be verified.
	Error string `json:"error,omitempty"`
	// NotLanded: the step failed because the binary lacks a command, flag
	// or API route (ErrNotLanded), not because something it has misbehaved.
	NotLanded bool `json:"not_landed,omitempty"`
	// Lines are extra lines for people (bids, statement).
	Lines []string `json:"lines,omitempty"`
	// Data holds the step's machine-readable facts.
	Data map[string]any `json:"data,omitempty"`
}

// Metrics are the figures the demo measures along the way; zero when the
// step that measures one did not pass.
type Metrics struct {
	// PlacementMS: request published → instance started (request --wait), ms.
	PlacementMS int64
	// ReplacementMS: host killed → page served by the new host, ms.
	ReplacementMS int64
	// Receipts: receipts in the ledger at the converged audit.
	Receipts int
	// Root: the ledger root every live node printed.
	Root string
}

// StepBrief is a step's name, status and duration in the summary.
type StepBrief struct {
	Step   string `json:"step"`
	Status Status `json:"status"`
	MS     int64  `json:"ms"`
}

// Summary is the demo's last JSON line.
type Summary struct {
	// OK is true only when every planned step ran and passed.
	OK bool `json:"ok"`
	// Nodes is the number of nodes the grid was started with.
	Nodes int `json:"nodes"`
	// PlacementMS, ReplacementMS, Receipts, Root: see Metrics.
	PlacementMS   int64  `json:"placement_ms"`
	ReplacementMS int64  `json:"replacement_ms"`
	Receipts      int    `json:"receipts"`
	Root          string `json:"root"`
	// ElapsedMS is the whole run's duration in milliseconds.
	ElapsedMS int64 `json:"elapsed_ms"`
	// Passed counts the steps that passed, out of Planned.
	Passed  int `json:"passed"`
	Planned int `json:"planned"`
	// FailedStep names the first step that failed or did not run.
	FailedStep string `json:"failed_step,omitempty"`
	// Error says why FailedStep did not pass.
	Error string `json:"error,omitempty"`
	// NotLanded: FailedStep failed because the binary lacks a command, flag
	// or route its subsystem will bring (see StepResult.NotLanded).
	NotLanded bool `json:"not_landed,omitempty"`
	// Failures lists every failed step as "step: error", in order.
	Failures []string `json:"failures,omitempty"`
	// Steps lists every planned step with its status.
	Steps []StepBrief `json:"steps"`
}

// Summarize builds the summary of a run that planned the named steps and
// produced results (in order, possibly fewer than planned). It is pure: OK is
// true only when every planned step has a result with status Passed.
func Summarize(nodes int, planned []string, results []StepResult, m Metrics, elapsed time.Duration) Summary {
	s := Summary{
		Nodes:         nodes,
		PlacementMS:   m.PlacementMS,
		ReplacementMS: m.ReplacementMS,
		Receipts:      m.Receipts,
		Root:          m.Root,
		ElapsedMS:     elapsed.Milliseconds(),
		Planned:       len(planned),
		Steps:         make([]StepBrief, 0, len(planned)),
	}
	byName := make(map[string]StepResult, len(results))
	for _, r := range results {
		byName[r.Step] = r
	}
	for _, name := range planned {
		r, ran := byName[name]
		b := StepBrief{Step: name, Status: Skipped}
		if ran {
			b.Status, b.MS = r.Status, r.MS
		}
		s.Steps = append(s.Steps, b)
		if b.Status == Failed {
			s.Failures = append(s.Failures, name+": "+r.Error)
		}
		switch {
		case b.Status == Passed:
			s.Passed++
		case s.FailedStep != "":
		case b.Status == Failed:
			s.FailedStep, s.Error, s.NotLanded = name, r.Error, r.NotLanded
			if s.Error == "" {
				s.Error = "failed without a message"
			}
		default:
			s.FailedStep, s.Error = name, "not run"
		}
	}
	s.OK = len(planned) > 0 && s.Passed == len(planned)
	return s
}
