package recipes

import (
	"fmt"
	"sort"
	"strings"
)

// Problem is one thing wrong with a recipe file.
type Problem struct {
	// Line is the 1-based line the problem is on (1 when unknown).
	Line int
	// Path is the key path, e.g. "types.default.processes.0.command".
	Path string
	// Msg says what is wrong, for a person.
	Msg string
}

// LintErrors is every problem of one recipe file, sorted by line. It wraps
// ErrInvalid.
type LintErrors struct {
	// File is the name given to Parse.
	File string
	// Problems are the problems, sorted by line.
	Problems []Problem
}

// Error formats one "FILE:LINE: message" line per problem.
func (e *LintErrors) Error() string {
	var b strings.Builder
	for i, p := range e.Problems {
		if i > 0 {
			b.WriteByte('\n')
		}
		fmt.Fprintf(&b, "%s:%d: %s", e.File, p.Line, p.Msg)
	}
	return b.String()
}

// Unwrap makes errors.Is(err, ErrInvalid) true.
func (e *LintErrors) Unwrap() error { return ErrInvalid }

// problems collects problems by key path while a recipe is checked.
type problems struct {
	list []Problem
	bad  []string // paths whose value had the wrong type (left unset)
}

// typeErr records a wrongly typed value at path.
func (p *problems) typeErr(path, format string, args ...any) {
	p.bad = append(p.bad, path)
	p.add(path, format, args...)
}

// dropUnder removes problems found after index from that concern a path
// whose value had the wrong type: that value was left unset, so "missing"
// and similar follow-ups would only repeat the first error.
func (p *problems) dropUnder(from int) {
	if len(p.bad) == 0 {
		return
	}
	keep := p.list[:from]
	for _, q := range p.list[from:] {
		drop := false
		for _, b := range p.bad {
			if q.Path == b || strings.HasPrefix(q.Path, b+".") {
				drop = true
				break
			}
		}
		if !drop {
			keep = append(keep, q)
		}
	}
	p.list = keep
}

func (p *problems) add(path, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if path != "" {
		msg = path + ": " + msg
	}
	p.list = append(p.list, Problem{Path: path, Msg: msg})
}

// errorFor resolves lines and returns a *LintErrors, or nil.
func (p *problems) errorFor(file string, lines map[string]int) error {
	if len(p.list) == 0 {
		return nil
	}
	out := make([]Problem, len(p.list))
	copy(out, p.list)
	for i := range out {
		if out[i].Line == 0 {
			out[i].Line = lineOf(lines, out[i].Path)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Line < out[j].Line })
	return &LintErrors{File: file, Problems: out}
}

// suggest returns " (did you mean X?)" when one of known is close to s.
func suggest(s string, known []string) string {
	best, bestD := "", 3
	for _, k := range known {
		if d := editDistance(s, k); d < bestD && d < len(s) {
			best, bestD = k, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 99
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			c := 1
			if a[i-1] == b[j-1] {
				c = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+c)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
