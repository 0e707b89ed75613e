package test

// The cores read time only through their injected clock
// (docs/architecture.md, "Pure cores, thin adapters").

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// clockedDirs are the packages (dir relative to the module, "/..." for the
// subtree too) whose non-test code must not read the time package's clock.
var clockedDirs = []string{"partition/...", "scheduler", "ledger"}

// wallTimeFuncs are the time package's functions that read or wait on the
// real clock.
var wallTimeFuncs = []string{"Now", "Since", "Until", "After", "AfterFunc", "NewTimer", "NewTicker", "Tick", "Sleep"}

// wallTimeCalls lists "file:line: time.F" for every use of a wallTimeFuncs
// function in the non-test Go files of dir (and below it when sub).
func wallTimeCalls(t *testing.T, dir string, sub bool) []string {
	t.Helper()
	var out []string
	fset := token.NewFileSet()
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if p != dir && (!sub || d.Name() == "testdata") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, p, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		name := ""
		for _, im := range f.Imports {
			if path, _ := strconv.Unquote(im.Path.Value); path == "time" {
				name = "time"
				if im.Name != nil {
					name = im.Name.Name
				}
			}
		}
		if name == "" {
			return nil
		}
		ast.Inspect(f, func(n ast.Node) bool {
			sel, ok := n.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			if x, ok := sel.X.(*ast.Ident); ok && x.Name == name && slices.Contains(wallTimeFuncs, sel.Sel.Name) {
				out = append(out, fset.Position(sel.Pos()).String()+": time."+sel.Sel.Name)
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// partition, the market's core and the ledger's read time only through
// their clock (partition.Config.Clock, scheduler.Deps.Clock,
// ledger.Config.Clock; the kernel waits of partition through its named
// wallClock), so tests can drive it.
func TestCoresReadTimeThroughTheirClock(t *testing.T) {
	for _, d := range clockedDirs {
		base, sub := strings.CutSuffix(d, "/...")
		if calls := wallTimeCalls(t, filepath.Join("..", base), sub); len(calls) > 0 {
			t.Errorf("%s reads the real clock directly (use the injected clock.Clock):\n%s", d, strings.Join(calls, "\n"))
		}
	}
}

// The check finds a direct read of the clock.
func TestWallTimeCallsFound(t *testing.T) {
	dir := t.TempDir()
	src := "package x\n\nimport tm \"time\"\n\nfunc f() { _ = tm.Now(); <-tm.After(tm.Second) }\n"
	if err := os.WriteFile(filepath.Join(dir, "x.go"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "x_test.go"), []byte("package x\n\nimport \"time\"\n\nvar _ = time.Now()\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := wallTimeCalls(t, dir, false); len(got) != 2 {
		t.Errorf("found %v, want time.Now and time.After of x.go", got)
	}
}
