package demo

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func results(st ...Status) []StepResult {
	var out []StepResult
	for i, s := range st {
		r := StepResult{Index: i + 1, Step: string(rune('a' + i)), Status: s, OK: s == Passed, MS: int64(10 * (i + 1))}
		if s == Failed {
			r.Error = "broke " + r.Step
		}
		out = append(out, r)
	}
	return out
}

func TestSummarize(t *testing.T) {
	planned := []string{"a", "b", "c", "d"}
	m := Metrics{PlacementMS: 120, ReplacementMS: 2400, Receipts: 9, Root: "ab"}
	cases := []struct {
		name       string
		res        []StepResult
		ok         bool
		passed     int
		failedStep string
		errHas     string
	}{
		{"all passed", results(Passed, Passed, Passed, Passed), true, 4, "", ""},
		{"stopped at a failure", results(Passed, Failed), false, 1, "b", "broke b"},
		{"soft failure then passes", results(Failed, Passed, Passed, Passed), false, 3, "a", "broke a"},
		{"interrupted before the end", results(Passed, Passed), false, 2, "c", "not run"},
		{"nothing ran", nil, false, 0, "a", "not run"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := Summarize(3, planned, c.res, m, 1500*time.Millisecond)
			if s.OK != c.ok || s.Passed != c.passed || s.FailedStep != c.failedStep || !strings.Contains(s.Error, c.errHas) {
				t.Fatalf("got ok=%v passed=%d failed=%q err=%q", s.OK, s.Passed, s.FailedStep, s.Error)
			}
			nf := 0
			for _, r := range c.res {
				if r.Status == Failed {
					nf++
				}
			}
			if len(s.Failures) != nf {
				t.Fatalf("failures %v, want %d", s.Failures, nf)
			}
			if s.Planned != 4 || len(s.Steps) != 4 || s.Nodes != 3 || s.ElapsedMS != 1500 {
				t.Fatalf("summary shape: %+v", s)
			}
			for i, b := range s.Steps {
				if b.Step != planned[i] {
					t.Fatalf("step %d is %q, want %q", i, b.Step, planned[i])
				}
				if i >= len(c.res) && b.Status != Skipped {
					t.Fatalf("step %q did not run but has status %v", b.Step, b.Status)
				}
			}
		})
	}
}

func TestSummarizeNeverOKWithoutSteps(t *testing.T) {
	if Summarize(5, nil, nil, Metrics{}, 0).OK {
		t.Fatal("a run that planned nothing is not ok")
	}
	// A result for a step that was not planned does not make up for a
	// planned one that is missing.
	res := []StepResult{{Step: "other", Status: Passed, OK: true}}
	if Summarize(5, []string{"a"}, res, Metrics{}, 0).OK {
		t.Fatal("ok without the planned step")
	}
}

func TestSummaryJSONHasContractFields(t *testing.T) {
	s := Summarize(5, []string{"a"}, results(Passed), Metrics{PlacementMS: 1, ReplacementMS: 2, Receipts: 3, Root: "ff"}, time.Second)
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"ok": true, "nodes": 5.0, "placement_ms": 1.0, "replacement_ms": 2.0, "receipts": 3.0, "root": "ff"}
	for k, v := range want {
		if m[k] != v {
			t.Errorf("%s = %v, want %v (%s)", k, m[k], v, b)
		}
	}
	// Statuses round-trip as names.
	var back Summary
	if err := json.Unmarshal(b, &back); err != nil || back.Steps[0].Status != Passed {
		t.Fatalf("round trip: %v %+v", err, back.Steps)
	}
}

func TestStatusText(t *testing.T) {
	for _, s := range []Status{Skipped, Passed, Failed} {
		b, _ := s.MarshalText()
		var back Status
		if err := back.UnmarshalText(b); err != nil || back != s {
			t.Errorf("%v: round trip gave %v, %v", s, back, err)
		}
	}
	var s Status
	if err := s.UnmarshalText([]byte("great")); err == nil {
		t.Error("unknown status accepted")
	}
	if Status(9).String() != "Status(9)" {
		t.Error(Status(9).String())
	}
}

func TestConfigValidate(t *testing.T) {
	ok := DefaultConfig()
	if err := ok.validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	bad := []func(*Config){
		func(c *Config) { c.Nodes = 2 },
		func(c *Config) { c.Nodes = 1000 },
		func(c *Config) { c.Slice = time.Millisecond },
		func(c *Config) { c.Slice = time.Hour },
		func(c *Config) { c.Partitions = 0 },
		func(c *Config) { c.Timeout = 0 },
		func(c *Config) { c.PrimesN = 1 },
	}
	for i, f := range bad {
		c := DefaultConfig()
		f(&c)
		if err := c.validate(); err == nil {
			t.Errorf("case %d: %+v accepted", i, c)
		}
	}
}
