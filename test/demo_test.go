package test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// demoWeftBin returns the weft binary `make test` built (env WEFT_BIN).
func demoWeftBin(t *testing.T) string {
	t.Helper()
	bin := os.Getenv("WEFT_BIN")
	if bin == "" {
		t.Skip("WEFT_BIN is not set: run through `make test`, or WEFT_BIN=$PWD/bin/weft go test ./test")
	}
	return bin
}

// demoSummary is the demo's last JSON line.
type demoSummary struct {
	OK            bool     `json:"ok"`
	Nodes         int      `json:"nodes"`
	PlacementMS   *int64   `json:"placement_ms"`
	ReplacementMS *int64   `json:"replacement_ms"`
	Receipts      *int     `json:"receipts"`
	Root          string   `json:"root"`
	FailedStep    string   `json:"failed_step"`
	Error         string   `json:"error"`
	NotLanded     bool     `json:"not_landed"`
	Failures      []string `json:"failures"`
	Passed        int      `json:"passed"`
	Planned       int      `json:"planned"`
}

// TestDemo runs `weft demo --nodes 3 --slice 1s --json` as `make demo` would
// and requires exit 0 and a summary that says every step was verified. It
// runs an installed copy of the binary from a folder outside the source
// tree, so the demo must use the example recipes embedded in the binary
// (TestDemoInterruptCleansUp runs it from the repository).
//
// The one allowance while subsystems land: when the first step that failed
// failed because the binary lacks a command, flag or API route (the demo
// marks it not_landed), the test is skipped naming that step. Any other
// failure fails the test, so it tightens by itself as pieces land.
func TestDemo(t *testing.T) {
	bin := demoInstalledCopy(t, demoWeftBin(t))
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "demo", "--nodes", "3", "--slice", "1s", "--json")
	cmd.Dir = t.TempDir() // no recipes/examples here, nor next to the binary
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runErr := cmd.Run()
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	var sum demoSummary
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &sum); err != nil {
		t.Fatalf("last line of the demo's output is not the summary (%v); exit %v\nstdout:\n%s\nstderr:\n%s", err, runErr, stdout.String(), stderr.String())
	}
	if !sum.OK && sum.NotLanded {
		t.Skipf("demo fails first at step %q because a subsystem has not landed (%d of %d steps verified); failures:\n%s",
			sum.FailedStep, sum.Passed, sum.Planned, strings.Join(sum.Failures, "\n"))
	}
	if runErr != nil || !sum.OK {
		t.Fatalf("demo failed (exit %v) at step %q: %s\nstderr:\n%s", runErr, sum.FailedStep, sum.Error, stderr.String())
	}
	if sum.Nodes != 3 || sum.Root == "" || sum.Receipts == nil || *sum.Receipts <= 0 || sum.PlacementMS == nil || sum.ReplacementMS == nil {
		t.Fatalf("summary: %s", lines[len(lines)-1])
	}
	// Every step line before the summary passed.
	from := ""
	for _, l := range lines[:len(lines)-1] {
		var st struct {
			Step string         `json:"step"`
			OK   bool           `json:"ok"`
			Data map[string]any `json:"data"`
		}
		if err := json.Unmarshal([]byte(l), &st); err != nil || !st.OK {
			t.Errorf("step line %s (%v)", l, err)
		}
		if st.Step == "publish recipes" {
			from, _ = st.Data["from"].(string)
		}
	}
	if from != "embedded in the binary" {
		t.Errorf("the recipes came from %q, want the copies embedded in the binary", from)
	}
	t.Logf("demo: placement %d ms, re-placement %d ms, %d receipts, root %s", *sum.PlacementMS, *sum.ReplacementMS, *sum.Receipts, sum.Root)
}

// demoInstalledCopy copies bin into a fresh folder (DIR/bin/weft), as an
// installed weft with no source tree around it.
func demoInstalledCopy(t *testing.T, bin string) string {
	t.Helper()
	b, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(t.TempDir(), "bin", "weft")
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b, 0o755); err != nil {
		t.Fatal(err)
	}
	return dst
}

// TestDemoInterruptCleansUp runs the demo with --keep, and once it keeps
// the grid (with whatever instances the steps got running) sends it SIGINT:
// every node process, every process working in the demo's folder (the
// instances in partitions) and the folder itself must be gone.
func TestDemoInterruptCleansUp(t *testing.T) {
	bin := demoWeftBin(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "demo", "--nodes", "3", "--slice", "1s", "--json", "--keep")
	cmd.Dir = ".."
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	errPipe, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill() }()

	// stdout: the step lines; the "start grid" one names the folder and pids.
	type started struct {
		dir  string
		pids []int
	}
	grid := make(chan started, 1)
	go func() {
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var st struct {
				Step string `json:"step"`
				OK   bool   `json:"ok"`
				Data struct {
					Dir  string `json:"dir"`
					PIDs []int  `json:"pids"`
				} `json:"data"`
			}
			if json.Unmarshal(sc.Bytes(), &st) == nil && st.Step == "start grid" && st.OK {
				grid <- started{st.Data.Dir, st.Data.PIDs}
			}
		}
	}()
	// stderr: wait for the line saying the grid is kept.
	var stderr bytes.Buffer
	kept := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(errPipe)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			stderr.Write(append(sc.Bytes(), '\n'))
			if strings.Contains(sc.Text(), "the grid keeps running") {
				kept <- true
			}
		}
		close(kept)
	}()
	var g started
	select {
	case g = <-grid:
	case <-ctx.Done():
		t.Fatal("the demo never reported its grid")
	}
	if ok := <-kept; !ok {
		_ = cmd.Wait()
		t.Fatalf("the demo ended without keeping the grid:\n%s", stderr.String())
	}
	if g.dir == "" || len(g.pids) != 3 {
		t.Fatalf("start grid reported dir %q and pids %v", g.dir, g.pids)
	}
	before := demoProcessesUnder(g.dir)
	t.Logf("%d processes work in the demo's folder before SIGINT", len(before))
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	err = cmd.Wait()
	t.Logf("demo exited: %v", err)
	for _, p := range g.pids {
		if syscall.Kill(p, 0) == nil && !demoZombie(p) {
			t.Errorf("node process %d still running after the demo was interrupted", p)
		}
	}
	if left := demoProcessesUnder(g.dir); len(left) > 0 {
		t.Errorf("processes still working in the demo's folder: %v", left)
	}
	if _, err := os.Stat(g.dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the demo's folder %s is still there (%v)", g.dir, err)
	}
	if t.Failed() {
		t.Logf("demo stderr:\n%s", stderr.String())
	}
}

func demoZombie(pid int) bool {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return true
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i > 0 && i+2 < len(s) && (s[i+2] == 'Z' || s[i+2] == 'X')
}

// demoProcessesUnder lists live processes whose command line or working
// directory is inside dir.
func demoProcessesUnder(dir string) []string {
	ents, _ := os.ReadDir("/proc")
	var out []string
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || demoZombie(pid) {
			continue
		}
		cmdline, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		cwd, _ := os.Readlink(filepath.Join("/proc", e.Name(), "cwd"))
		if strings.Contains(string(cmdline), dir) || strings.HasPrefix(cwd, dir) {
			out = append(out, e.Name()+": "+strings.ReplaceAll(string(cmdline), "\x00", " "))
		}
	}
	return out
}
