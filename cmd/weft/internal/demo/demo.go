package demo

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"time"
)

// ErrFailed means at least one step could not be verified.
var ErrFailed = errors.New("demo: not every step was verified")

// Run runs the demo with cfg, printing progress for people on human and,
// with cfg.JSON, one JSON line per step and the summary on machine. It
// returns the summary and nil only when every step was verified; otherwise
// an error wrapping ErrFailed or ErrInterrupted. Every process and folder it
// made is gone when it returns.
func Run(ctx context.Context, cfg Config, machine, human io.Writer) (Summary, error) {
	t0 := time.Now()
	if err := cfg.validate(); err != nil {
		return Summary{}, err
	}
	if err := supported(); err != nil {
		return Summary{}, err
	}
	if cfg.Bin == "" {
		exe, err := os.Executable()
		if err != nil {
			return Summary{}, fmt.Errorf("demo: cannot find the weft binary: %w", err)
		}
		cfg.Bin = exe
	}
	if cfg.Message == "" {
		b := make([]byte, 4)
		_, _ = rand.Read(b)
		cfg.Message = "hello from weft demo " + hex.EncodeToString(b)
	}
	dir, err := os.MkdirTemp(cfg.WorkDir, "weft-demo-")
	if err != nil {
		return Summary{}, fmt.Errorf("demo: temporary folder: %w", err)
	}
	// Partition users (see grid.start) must be able to traverse it.
	if err := os.Chmod(dir, 0o711); err != nil {
		_ = os.RemoveAll(dir)
		return Summary{}, fmt.Errorf("demo: temporary folder: %w", err)
	}
	becomeSubreaper()

	rep := &reporter{human: human}
	if cfg.JSON {
		rep.machine = machine
	}
	g := &grid{bin: cfg.Bin, dir: dir, slice: cfg.Slice, partitions: cfg.Partitions}
	s := &session{cfg: cfg, g: g, rep: rep, parent: ctx, message: cfg.Message}

	steps := Steps()
	planned := make([]string, 0, len(steps)+1)
	for _, st := range steps {
		planned = append(planned, st.Name)
	}
	planned = append(planned, cleanupStep)
	total := len(planned)

	rep.notef("weft demo: %d nodes, slice %s, folder %s", cfg.Nodes, cfg.Slice, dir)
	var results []StepResult
	func() {
		sctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
		defer cancel()
		for i, st := range steps {
			if sctx.Err() != nil {
				break
			}
			rep.begin(i+1, total, st.Name)
			res := runStep(sctx, i+1, st, s)
			rep.end(res)
			results = append(results, res)
			if res.Status != Passed && !st.Soft {
				break
			}
		}
	}()
	if failed(results) {
		showLogs(rep, g)
	}
	if cfg.Keep && ctx.Err() == nil {
		for _, l := range keepInfo(cfg.Bin, g.all()) {
			rep.notef("%s", l)
		}
		<-ctx.Done()
		rep.notef("weft demo: stopping the grid")
	}

	rep.begin(total, total, cleanupStep)
	ct := time.Now()
	res := StepResult{Index: total, Step: cleanupStep, Status: Passed, OK: true}
	if err := g.close(5 * time.Second); err != nil {
		res.Status, res.OK, res.Error = Failed, false, err.Error()
	} else {
		res.Detail = fmt.Sprintf("%d node processes and everything below them stopped; %s removed", len(g.all()), dir)
	}
	res.MS = time.Since(ct).Milliseconds()
	rep.end(res)
	results = append(results, res)

	sum := Summarize(cfg.Nodes, planned, results, s.m, time.Since(t0))
	rep.summary(sum)
	switch {
	case sum.OK:
		return sum, nil
	case ctx.Err() != nil:
		return sum, fmt.Errorf("%w before %q", ErrInterrupted, sum.FailedStep)
	default:
		return sum, fmt.Errorf("%w: %s: %s", ErrFailed, sum.FailedStep, sum.Error)
	}
}

func failed(results []StepResult) bool {
	for _, r := range results {
		if r.Status != Passed {
			return true
		}
	}
	return false
}

// showLogs prints the last lines of every node's log, to explain a failure.
func showLogs(rep *reporter, g *grid) {
	for _, n := range g.all() {
		rep.notef("--- last lines of %s's log (%s):\n%s", n.name, n.logPath, tail(n.logPath, 6))
	}
}
