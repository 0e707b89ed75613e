package partition

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/weftgrid/weft/recipes/clock"
)

// The log rotation runs while the instance runs: an instance that replaces
// its log directory by a symlink must not make the node (root) rename,
// copy or truncate files elsewhere.
func TestRotateLogDoesNotFollowSymlinkedLogDir(t *testing.T) {
	part := t.TempDir()
	outside := t.TempDir()
	victim := filepath.Join(outside, "main.log")
	content := bytes.Repeat([]byte("precious\n"), 20)
	if err := os.WriteFile(victim, content, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(part, "log")); err != nil {
		t.Fatal(err)
	}
	rotateLog(filepath.Join(part, "log", "main.log"), 50, 3)
	if b, _ := os.ReadFile(victim); !bytes.Equal(b, content) {
		t.Errorf("file behind the symlinked log dir truncated: %d bytes left", len(b))
	}
	if _, err := os.Lstat(victim + ".1"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("rotated copy created behind the symlink: %v", err)
	}
}

// An instance that replaces its log by a FIFO must not hang the supervisor
// (and with it stop, destroy and Close).
func TestFifoLogDoesNotHangStop(t *testing.T) {
	m := newTestManager(t, nil)
	var launches atomic.Int32
	testHookLaunch = func(*runState) { launches.Add(1) }
	t.Cleanup(func() { testHookLaunch = nil })
	rc := mustParse(shRecipe("rm -f $HOME/log/main.log && mkfifo $HOME/log/main.log && exit 1", false, "always"))
	if err := m.Apply(InstanceSpec{ID: "fifo", Recipe: rc, State: StateStarted}); err != nil {
		t.Fatal(err)
	}
	var st InstanceStatus
	waitFor(t, "fifo planted", func() bool {
		st, _ = m.Get("fifo")
		if st.Partition < 0 {
			return false
		}
		fi, err := os.Lstat(filepath.Join(m.partDir(st.Partition), "log", "main.log"))
		return err == nil && fi.Mode()&os.ModeNamedPipe != 0 && launches.Load() >= 2
	})
	if err := m.SetState("fifo", StateStopped); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		waitPhase(t, m, "fifo", PhaseStopped)
	}()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		// Unblock the supervisor so the test can end.
		if f, err := os.OpenFile(filepath.Join(m.partDir(st.Partition), "log", "main.log"), os.O_RDONLY|syscall.O_NONBLOCK, 0); err == nil {
			defer f.Close()
		}
		<-done
		t.Fatal("stop hung on the instance's FIFO log")
	}
}

// A stop that comes while the supervisor relaunches a crashed process must
// not leave the new process running.
func TestStopDuringRelaunchLeavesNoOrphan(t *testing.T) {
	m := newTestManager(t, func(c *Config) { c.Cgroups = false })
	var launches atomic.Int32
	testHookLaunch = func(rs *runState) {
		if launches.Add(1) == 2 { // the first restart: wait for the stop
			<-rs.ctx.Done()
		}
	}
	t.Cleanup(func() { testHookLaunch = nil })
	rc := mustParse(shRecipe("if [ -e $HOME/ran ]; then exec sleep 1000; fi; touch $HOME/ran; exit 1", false, "always"))
	if err := m.Apply(InstanceSpec{ID: "o", Recipe: rc, State: StateStarted}); err != nil {
		t.Fatal(err)
	}
	var st InstanceStatus
	waitFor(t, "first run exited", func() bool {
		st, _ = m.Get("o")
		return launches.Load() >= 2
	})
	dir := m.partDir(st.Partition)
	if err := m.SetState("o", StateStopped); err != nil {
		t.Fatal(err)
	}
	waitPhase(t, m, "o", PhaseStopped)
	if pids := pidsWithEnv("HOME=" + dir); len(pids) > 0 {
		for _, pid := range pids {
			killPid(t, pid)
		}
		t.Fatalf("processes of the stopped instance still run: %v", pids)
	}
}

// pidsWithEnv lists live processes whose environment holds kv.
func pidsWithEnv(kv string) []int {
	var out []int
	for _, p := range scanProcs() {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(p.PID) + "/environ")
		if err != nil {
			continue
		}
		for _, e := range bytes.Split(b, []byte{0}) {
			if string(e) == kv {
				out = append(out, p.PID)
			}
		}
	}
	return out
}

// A batch timeout that fires while a process waits to be restarted ends
// the run: the process is not started again. The manager's clock is a
// fake: the timeout fires exactly while the supervisor waits out its
// back-off, and the back-off ends after it.
func TestBatchTimeoutDuringBackoff(t *testing.T) {
	fake := clock.NewFake(time.Now())
	m := newTestManager(t, func(c *Config) {
		c.Clock = fake
		c.RestartBackoff, c.RestartBackoffMax = 2*time.Second, 2*time.Second
	})
	const idle = 2 // the sample and reconcile tickers
	waitFor(t, "the manager's tickers", func() bool { return fake.Waiters() == idle })
	rc := mustParse(`
name = "slowretry"
version = "1"
[types.default]
batch = true
timeout = "200ms"
[[types.default.processes]]
name = "main"
command = "/bin/sh"
args = ["-c", "if [ -e $HOME/ran ]; then touch $HOME/ran2; exec sleep 1000; fi; touch $HOME/ran; exit 1"]
restart = "on-failure"
`)
	if err := m.Apply(InstanceSpec{ID: "b", Recipe: rc, State: StateStarted}); err != nil {
		t.Fatal(err)
	}
	// Armed: the batch timeout (200 ms) and, once the first run exited,
	// the supervisor's back-off (2 s).
	waitFor(t, "the supervisor waiting out its back-off", func() bool { return fake.Waiters() == idle+2 })
	fake.Advance(200 * time.Millisecond)
	waitFor(t, "the run ended by its timeout", func() bool { st, _ := m.Get("b"); return st.Phase == PhaseFailed })
	fake.Advance(time.Hour) // the back-off ends
	var st InstanceStatus
	relaunched := func() bool {
		if st.Partition < 0 {
			return false
		}
		_, err := os.Stat(filepath.Join(m.partDir(st.Partition), "ran2"))
		return err == nil
	}
	waitFor(t, "failed or relaunched", func() bool {
		st, _ = m.Get("b")
		return st.Phase == PhaseFailed || relaunched()
	})
	if relaunched() || st.Phase != PhaseFailed || !strings.Contains(st.Error, "timeout") {
		t.Fatalf("relaunched after the batch timeout: phase %s, error %q", st.Phase, st.Error)
	}
}

// Without cgroups, a node and an instance's group leader both died: the
// leader's children left in its process group are killed at the next
// start, not orphaned.
func TestRecoverKillsGroupOfDeadLeader(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(dir)
	cfg.PortBase = freePortBase(t, 6)
	cfg.Cgroups = false
	cfg.KeepRunningOnClose = true
	m := startManager(t, cfg)
	rc := mustParse(shRecipe("sleep 1000 & echo $! > $HOME/child; exec sleep 1000", false, "always"))
	if err := m.Apply(InstanceSpec{ID: "g", Recipe: rc, State: StateStarted}); err != nil {
		t.Fatal(err)
	}
	st := waitPhase(t, m, "g", PhaseRunning)
	childFile := filepath.Join(m.partDir(st.Partition), "child")
	waitFor(t, "child pid", func() bool { b, _ := os.ReadFile(childFile); return len(bytes.TrimSpace(b)) > 0 })
	child, err := strconv.Atoi(readFileString(t, childFile))
	if err != nil {
		t.Fatal(err)
	}
	m.Close() // like a crash: processes left running
	leader := st.Processes[0].PID
	killPid(t, leader)
	waitFor(t, "leader gone", func() bool { return !alive(leader) })
	if !alive(child) {
		t.Fatal("child died with its leader")
	}
	t.Cleanup(func() {
		if alive(child) {
			killPid(t, child)
		}
	})
	cfg.KeepRunningOnClose = false
	m2 := startManager(t, cfg)
	defer m2.Close()
	if alive(child) {
		t.Errorf("child %d of the dead leader %d still runs after recovery", child, leader)
	}
}

// Apply may change an instance while the loop starts it: the start works
// on a snapshot of the spec (run with -race).
func TestApplyDuringInstallNoRace(t *testing.T) {
	m := newTestManager(t, nil)
	gate := filepath.Join(t.TempDir(), "gate")
	letInstallsWrite(m, filepath.Dir(gate))
	rc := mustParse(`
name = "slowinstall"
version = "1"
[params.v]
default = "1"
[install]
commands = ["while [ ! -e ` + gate + ` ]; do sleep 0.01; done"]
[types.default]
[[types.default.processes]]
name = "main"
command = "/bin/sh"
args = ["-c", "exec sleep 1000"]
`)
	if err := m.Apply(InstanceSpec{ID: "r", Recipe: rc, State: StateStarted}); err != nil {
		t.Fatal(err)
	}
	waitPhase(t, m, "r", PhaseInstalling)
	if err := m.Apply(InstanceSpec{ID: "r", Recipe: rc, State: StateStarted, Params: map[string]any{"v": "2"}}); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(gate, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "restarted with the new params", func() bool {
		st, _ := m.Get("r")
		return st.Phase == PhaseRunning && !st.Stale
	})
}

// An instance destroyed and then wanted again keeps its metering: the
// series of the first life must not be dropped under the running one.
func TestSeriesOfRecreatedInstanceKept(t *testing.T) {
	fake := clock.NewFake(time.Now())
	set := fake.Set
	t0 := fake.Now()
	m := newTestManager(t, func(c *Config) { c.Clock = fake; c.Retention = time.Hour })
	rc := mustParse(shRecipe("exec sleep 1000", false, "always"))
	spec := InstanceSpec{ID: "s", Recipe: rc, State: StateStarted}
	if err := m.Apply(spec); err != nil {
		t.Fatal(err)
	}
	waitPhase(t, m, "s", PhaseRunning)
	spec.State = StateDestroyed
	if err := m.Apply(spec); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "destroyed", func() bool { _, ok := m.Get("s"); return !ok })
	t1 := t0.Add(50 * time.Minute)
	set(t1)
	spec.State = StateStarted
	if err := m.Apply(spec); err != nil {
		t.Fatal(err)
	}
	waitPhase(t, m, "s", PhaseRunning)
	samplesIn := func(from, to time.Time) int {
		u, err := m.Usage("s", from, to)
		if err != nil {
			return 0
		}
		return u.Samples
	}
	waitFor(t, "a sample of the second life", func() bool { return samplesIn(t1, t1.Add(time.Second)) > 0 })
	t2 := t0.Add(61 * time.Minute) // more than the retention after the destroy, not after t1
	set(t2)
	waitFor(t, "a sample at t2", func() bool { return samplesIn(t2, t2.Add(time.Second)) > 0 })
	if n := samplesIn(t1, t2); n == 0 {
		t.Errorf("samples of the running instance taken at t1 (11 min ago, retention 1 h) were dropped")
	}
}

// The restart budget counts quick crashes in a row: a run of 10 s or more
// (on the manager's clock, a fake here) starts the count over. With a
// budget of 1, two quick crashes in a row fail the instance; a long run
// between them does not.
func TestLongRunResetsRestartBudget(t *testing.T) {
	fake := clock.NewFake(time.Now())
	m := newTestManager(t, func(c *Config) { c.Clock = fake; c.RestartBudget = 1 })
	const idle = 2 // the sample and reconcile tickers
	waitFor(t, "the manager's tickers", func() bool { return fake.Waiters() == idle })
	// Run n waits for the file go<n>, then crashes.
	rc := mustParse(shRecipe(`echo x >> "$HOME/starts"; n=$(wc -l < "$HOME/starts"); while [ ! -e "$HOME/go$n" ]; do sleep 0.01; done; exit 3`, false, "always"))
	if err := m.Apply(InstanceSpec{ID: "budget", Recipe: rc, State: StateStarted}); err != nil {
		t.Fatal(err)
	}
	st := waitPhase(t, m, "budget", PhaseRunning)
	dir := m.partDir(st.Partition)
	started := func(n int) {
		t.Helper()
		waitFor(t, fmt.Sprintf("run %d", n), func() bool {
			b, _ := os.ReadFile(filepath.Join(dir, "starts"))
			return strings.Count(string(b), "\n") >= n
		})
	}
	crash := func(n int) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, "go"+strconv.Itoa(n)), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	backOff := func(n int) { // the supervisor waits out its back-off: end it
		t.Helper()
		failed := func() bool { st, _ := m.Get("budget"); return st.Phase == PhaseFailed }
		waitFor(t, fmt.Sprintf("the back-off after run %d", n), func() bool { return fake.Waiters() == idle+1 || failed() })
		if st, _ := m.Get("budget"); st.Phase == PhaseFailed {
			t.Fatalf("failed after run %d: %s", n, st.Error)
		}
		fake.Advance(time.Minute)
	}
	started(1)
	crash(1) // quick: 1 of 1
	backOff(1)
	started(2)
	fake.Advance(10 * time.Second) // a long run
	crash(2)
	backOff(2)
	started(3)
	crash(3) // quick: 1 of 1 again
	backOff(3)
	started(4)
	crash(4) // quick: 2 in a row, past the budget
	st = waitPhase(t, m, "budget", PhaseFailed)
	if !strings.Contains(st.Error, "crashed 2 times in a row") {
		t.Fatalf("reason %q, want the budget exhausted after 2 quick crashes", st.Error)
	}
}
