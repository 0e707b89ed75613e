package demo

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestMain(m *testing.M) {
	if os.Getenv(fakeEnv) == "1" {
		os.Exit(fakeMain(os.Args[1:]))
	}
	os.Exit(m.Run())
}

// fakeConfig runs the demo against the fake weft (this test binary).
func fakeConfig(t *testing.T) Config {
	t.Helper()
	t.Setenv(fakeEnv, "1")
	rdir := t.TempDir()
	for _, f := range demoRecipes {
		if err := os.WriteFile(filepath.Join(rdir, f), []byte("name = \""+f+"\"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cfg := DefaultConfig()
	cfg.Nodes = 3
	cfg.Slice = 200 * time.Millisecond
	cfg.Bin = os.Args[0]
	cfg.RecipesDir = rdir
	cfg.WorkDir = t.TempDir()
	cfg.JSON = true
	cfg.Timeout = 60 * time.Second
	return cfg
}

// syncBuffer is a bytes.Buffer safe for the demo's writer and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
	on func(line string)
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.on != nil {
		for _, l := range strings.Split(strings.TrimRight(string(p), "\n"), "\n") {
			s.on(l)
		}
	}
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// assertCleanedUp checks that no process is left below this test process
// and that the work dir is empty.
func assertCleanedUp(t *testing.T, workDir string) {
	t.Helper()
	for _, p := range descendants(os.Getpid()) {
		if alive(p) {
			cmd, _ := os.ReadFile(filepath.Join("/proc", strconv.Itoa(p), "cmdline"))
			t.Errorf("process %d still running after the demo: %q", p, cmd)
		}
	}
	ents, err := os.ReadDir(workDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		t.Errorf("left behind in the work dir: %s", e.Name())
	}
}

func TestRunAgainstFakeGrid(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	cfg := fakeConfig(t)
	var out, human syncBuffer
	sum, err := Run(context.Background(), cfg, &out, &human)
	if err != nil {
		t.Fatalf("Run: %v\n%s", err, human.String())
	}
	if !sum.OK || sum.Nodes != 3 || sum.Root == "" || sum.Receipts <= 0 || sum.PlacementMS <= 0 || sum.ReplacementMS <= 0 {
		t.Fatalf("summary %+v\n%s", sum, human.String())
	}
	// One JSON line per step, then the summary, which matches.
	var lines []string
	sc := bufio.NewScanner(strings.NewReader(out.String()))
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	if len(lines) != sum.Planned+1 {
		t.Fatalf("%d JSON lines for %d steps:\n%s", len(lines), sum.Planned, out.String())
	}
	for _, l := range lines[:len(lines)-1] {
		var r StepResult
		if err := json.Unmarshal([]byte(l), &r); err != nil || r.Status != Passed || !r.OK {
			t.Errorf("step line %s: %v", l, err)
		}
	}
	var last map[string]any
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &last); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"ok", "nodes", "placement_ms", "replacement_ms", "receipts", "root"} {
		if _, ok := last[k]; !ok {
			t.Errorf("summary lacks %q: %s", k, lines[len(lines)-1])
		}
	}
	// The fake places a request on its requester when it may: the label
	// constraint must keep the web server off node0.
	for _, l := range lines {
		var r StepResult
		if json.Unmarshal([]byte(l), &r) == nil && r.Step == "place webserver" {
			if r.Data["host"] == r.Data["requester"] || r.Data["host"] == nil {
				t.Errorf("web server placed on its requester: %s", l)
			}
		}
	}
	t.Logf("demo output:\n%s", human.String())
	assertCleanedUp(t, cfg.WorkDir)
}

func TestInterruptCleansUp(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	cfg := fakeConfig(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, human syncBuffer
	// Interrupt once the web server runs: nodes and an instance process are up.
	out.on = func(l string) {
		if strings.Contains(l, `"step":"fetch page"`) {
			cancel()
		}
	}
	sum, err := Run(ctx, cfg, &out, &human)
	if !errors.Is(err, ErrInterrupted) {
		t.Fatalf("Run after cancel: %v, want ErrInterrupted\n%s", err, human.String())
	}
	if sum.OK {
		t.Fatal("an interrupted run reported ok")
	}
	assertCleanedUp(t, cfg.WorkDir)
}

func TestFailureStopsAndSaysWhy(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	cfg := fakeConfig(t)
	cfg.RecipesDir = t.TempDir() // no recipes there
	var out, human syncBuffer
	sum, err := Run(context.Background(), cfg, &out, &human)
	if !errors.Is(err, ErrFailed) || sum.OK {
		t.Fatalf("Run without recipes: ok=%v err=%v", sum.OK, err)
	}
	if sum.FailedStep != "publish recipes" || !strings.Contains(sum.Error, "recipes not found") {
		t.Fatalf("failed step %q: %q", sum.FailedStep, sum.Error)
	}
	for _, st := range sum.Steps {
		if st.Step == "place webserver" && st.Status != Skipped {
			t.Errorf("a step after the failure ran: %+v", st)
		}
	}
	assertCleanedUp(t, cfg.WorkDir)
}
