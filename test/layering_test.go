package test

// The package layering rules of docs/architecture.md ("What may import
// what"), checked against the module's real import graph from `go list`.

import (
	"bytes"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/weftgrid/weft/"

// layerRule says which of the module's packages the packages matching
// Pkg may import (directly, in non-test files). Pkg is a package path
// relative to the module, or a prefix ending in "/..." that also matches
// the package itself. May lists the same forms; an empty May means no
// package of the module. Except lists packages the rule does not apply to.
type layerRule struct {
	Pkg    string
	May    []string
	Except []string
	Why    string
}

// layerRules are the rules of docs/architecture.md.
var layerRules = []layerRule{
	{Pkg: "recipes/wire", Why: "a leaf helper every package may import: the wire formats' CBOR and signatures"},
	{Pkg: "recipes/atomicfile", Why: "a leaf helper every package may import: atomic file replacement"},
	{Pkg: "recipes/clock", Why: "a leaf helper every package may import: the cores' injected time, timers and tickers"},
	{Pkg: "recipes", Why: "the recipe format is the base everything builds on"},
	{Pkg: "recipes/examples", Why: "embedded example files only"},
	{Pkg: "recipes/...", May: []string{"recipes/..."}, Why: "content depends only on the recipe format"},
	{Pkg: "partition/...", May: []string{"partition/...", "recipes/..."}, Why: "the runtime never talks to the network (no p2p) nor to the market or ledger"},
	{Pkg: "p2p/...", May: []string{"p2p/..."}, Why: "the network layer knows no protocol above it"},
	{Pkg: "scheduler", Why: "the market is a pure core"},
	{Pkg: "ledger", Why: "the ledger is a pure core"},
	{Pkg: "scheduler/...", May: []string{"scheduler/...", "p2p/...", "partition/...", "recipes/..."}, Why: "the market and its adapters never import the ledger"},
	{Pkg: "ledger/...", May: []string{"ledger/...", "p2p/..."}, Except: []string{"ledger/settle"}, Why: "the ledger and its adapters never import the market"},
	{Pkg: "ledger/settle", May: []string{"ledger", "scheduler"}, Why: "the bridge joins the two cores and nothing networked"},
	{Pkg: "cmd/weft/internal/api", May: []string{"scheduler", "partition", "ledger", "recipes"}, Why: "the API's types and client are shared by client and node (answers may be core views)"},
	{Pkg: "cmd/weft/internal/config", May: []string{"cmd/weft/internal/api", "scheduler"}, Why: "config is read by client and node (money in the market's units)"},
	{Pkg: "cmd/weft/internal/dashboard", May: []string{"cmd/weft/internal/api"}, Why: "the dashboard is an API client"},
	{Pkg: "cmd/weft/internal/content", May: []string{"cmd/weft/internal/api", "cmd/weft/internal/config", "p2p", "partition", "recipes", "recipes/store", "recipes/transfer"}, Why: "the recipes subsystem: content store and transfer"},
	{Pkg: "cmd/weft/internal/localapi", May: []string{"cmd/weft/internal/api", "partition", "recipes", "recipes/store", "recipes/transfer"}, Why: "the local-instance routes over the partitions, without the market"},
	{Pkg: "cmd/weft/internal/ledgerapi", May: []string{"cmd/weft/internal/api", "ledger"}, Why: "the ledger's HTTP routes over the ledger"},
	{Pkg: "cmd/weft/internal/marketapi", May: []string{"cmd/weft/internal/api", "cmd/weft/internal/jobs", "recipes", "scheduler", "scheduler/schedrun"}, Why: "the market's HTTP routes over the engine, the content and the jobs"},
	{Pkg: "cmd/weft/internal/jobs", May: []string{"cmd/weft/internal/api", "scheduler"}, Why: "jobs are a client of the market engine"},
	{Pkg: "cmd/weft/internal/timeline", May: []string{"cmd/weft/internal/api", "scheduler"}, Why: "instance timelines are a client of the market engine"},
	{Pkg: "cmd/weft/internal/version", Why: "build information only"},
	{Pkg: "cmd/weft/internal/drain", May: []string{"cmd/weft/internal/api", "p2p", "scheduler"}, Why: "drain: the market's bidding and the node's advert"},
	{Pkg: "cmd/weft/internal/remotelog", May: []string{"cmd/weft/internal/api", "p2p/logstream", "partition", "scheduler"}, Why: "instance logs: the log protocol over the partitions, authorized by the market"},
	{Pkg: "cmd/weft/internal/tunnels", May: []string{"cmd/weft/internal/api", "cmd/weft/internal/marketapi", "p2p/tunnel", "partition", "scheduler"}, Why: "instance connect: tunnels to hosted instances' ports over libp2p, authorized by the market"},
	{Pkg: "cmd/weft/internal/demo", May: []string{"cmd/weft/internal/api", "recipes/examples", "ledger"}, Why: "the demo drives weft processes (and shows money as the ledger writes it)"},
}

// leafHelpers are the packages every package may import; they import
// nothing of ours (their rules above).
var leafHelpers = []string{"recipes/wire", "recipes/atomicfile", "recipes/clock"}

// forbiddenDeps are transitive rules: the packages matching Pkg must not
// depend on To at all, through any path.
var forbiddenDeps = []struct{ Pkg, To, Why string }{
	{"cmd/weft/internal/cli", "cmd/weft/internal/daemon", "client commands do not link the node"},
	{"cmd/weft/internal/cli", "cmd/weft/internal/nodecmd", "client commands do not link the node"},
	{"cmd/weft/internal/api", "cmd/weft/internal/daemon", "the API client does not link the node"},
}

// match reports whether pkg (relative to the module) matches pattern.
func match(pattern, pkg string) bool {
	if base, ok := strings.CutSuffix(pattern, "/..."); ok {
		return pkg == base || strings.HasPrefix(pkg, base+"/")
	}
	return pattern == pkg
}

// ruleFor is the most specific rule for pkg: an exact rule wins over a
// prefix rule; among prefix rules the longest wins.
func ruleFor(pkg string) (layerRule, bool) {
	var best layerRule
	found, bestLen := false, -1
	for _, r := range layerRules {
		if !match(r.Pkg, pkg) || slices.Contains(r.Except, pkg) {
			continue
		}
		l := len(r.Pkg)
		if !strings.HasSuffix(r.Pkg, "/...") {
			l = 1 << 20
		}
		if l > bestLen {
			best, found, bestLen = r, true, l
		}
	}
	return best, found
}

// layerViolations checks imports (package → its direct imports, all paths
// relative to the module) against layerRules and the rule that nothing
// outside cmd/ imports cmd/.
func layerViolations(imports map[string][]string) []string {
	var out []string
	for pkg, deps := range imports {
		r, ruled := ruleFor(pkg)
		for _, dep := range deps {
			switch {
			case !strings.HasPrefix(pkg, "cmd/") && strings.HasPrefix(dep, "cmd/"):
				out = append(out, pkg+" imports "+dep+": no core package imports cmd/")
			case slices.Contains(leafHelpers, dep):
				// Every package may use the module's leaf helpers.
			case ruled && !slices.ContainsFunc(r.May, func(p string) bool { return match(p, dep) }):
				out = append(out, pkg+" imports "+dep+": "+r.Why)
			}
		}
	}
	slices.Sort(out)
	return out
}

// goList runs go list in the module's root and returns, per package of the
// module, its imports of the module (relative paths).
func goList(t *testing.T, args ...string) map[string][]string {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("go", append([]string{"list", "-f", "{{.ImportPath}} {{join .Imports \" \"}}"}, args...)...)
	cmd.Dir = root
	b, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list %v: %v", args, err)
	}
	out := map[string][]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || !strings.HasPrefix(f[0], module) {
			continue
		}
		pkg := strings.TrimPrefix(f[0], module)
		out[pkg] = []string{}
		for _, d := range f[1:] {
			if rel, ok := strings.CutPrefix(d, module); ok {
				out[pkg] = append(out[pkg], rel)
			}
		}
	}
	return out
}

func TestLayeringRules(t *testing.T) {
	graph := goList(t, "./...")
	if len(graph) < 10 {
		t.Fatalf("go list found only %d packages: %v", len(graph), graph)
	}
	for _, v := range layerViolations(graph) {
		t.Error(v)
	}
	for _, f := range forbiddenDeps {
		deps := goList(t, "-deps", "./"+f.Pkg)
		if _, ok := deps[f.To]; ok {
			t.Errorf("%s depends on %s (go list -deps ./%s): %s", f.Pkg, f.To, f.Pkg, f.Why)
		}
	}
}

// The checker itself fails on each kind of forbidden import.
func TestLayeringRulesCatchViolations(t *testing.T) {
	for name, g := range map[string]map[string][]string{
		"core imports cmd":          {"p2p": {"cmd/weft/internal/api"}},
		"recipes imports ours":      {"recipes": {"partition"}},
		"partition imports p2p":     {"partition/metering": {"p2p"}},
		"scheduler imports ledger":  {"scheduler/schedp2p": {"ledger"}},
		"ledger imports scheduler":  {"ledger/ledgerp2p": {"scheduler"}},
		"bridge imports the net":    {"ledger/settle": {"p2p"}},
		"pure ledger imports p2p":   {"ledger": {"p2p"}},
		"api imports the daemon":    {"cmd/weft/internal/api": {"cmd/weft/internal/daemon"}},
		"new partition subpackage":  {"partition/newthing": {"scheduler"}},
		"new scheduler subpackage ": {"scheduler/newthing": {"ledger/settle"}},
		"helper imports ours":       {"recipes/wire": {"recipes"}},
		"clock imports ours":        {"recipes/clock": {"recipes"}},
	} {
		if v := layerViolations(g); len(v) != 1 {
			t.Errorf("%s: %d violations %v, want 1", name, len(v), v)
		}
	}
	ok := map[string][]string{
		"ledger/settle": {"ledger", "scheduler"}, "scheduler/schedp2p": {"scheduler", "p2p"},
		"partition": {"partition/metering", "recipes"}, "cmd/weft/internal/daemon": {"ledger", "scheduler", "p2p"},
		"recipes": {"recipes/wire"}, "ledger": {"recipes/wire"}, "p2p": {"recipes/atomicfile"},
		"scheduler/schedrun": {"recipes/clock"}, "partition/metering": {"recipes/clock"},
	}
	if v := layerViolations(ok); len(v) != 0 {
		t.Errorf("allowed imports reported: %v", v)
	}
}

// daemonLineBudget bounds the daemon's non-test Go code (wc -l over the
// folder and its subfolders, comments included): the daemon wires the
// subsystems; their logic belongs in their own packages.
const daemonLineBudget = 2000

func TestDaemonStaysWiring(t *testing.T) {
	root, err := filepath.Abs("../cmd/weft/internal/daemon")
	if err != nil {
		t.Fatal(err)
	}
	lines, files := 0, 0
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		files++
		lines += bytes.Count(b, []byte("\n"))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files == 0 {
		t.Fatal("no daemon sources found")
	}
	if lines > daemonLineBudget {
		t.Fatalf("cmd/weft/internal/daemon holds %d lines of non-test Go in %d files, over its budget of %d: move logic into the subsystem's package (docs/architecture.md)", lines, files, daemonLineBudget)
	}
}

// docs/architecture.md's table "What may import what" names every package
// a rule above is about (by its path, or without cmd/weft/internal/).
func TestArchitectureDocNamesEveryRule(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "docs", "architecture.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, table, ok := strings.Cut(string(b), "## What may import what")
	if !ok {
		t.Fatal(`docs/architecture.md has no section "What may import what"`)
	}
	for _, r := range layerRules {
		short := strings.TrimPrefix(r.Pkg, "cmd/weft/internal/")
		if !strings.Contains(table, "`"+r.Pkg+"`") && !strings.Contains(table, "`"+short+"`") {
			t.Errorf("docs/architecture.md's import rules do not name %s (%s)", r.Pkg, r.Why)
		}
	}
}
