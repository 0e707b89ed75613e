package partition

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestServiceLifecycle(t *testing.T) {
	m := newTestManager(t, nil)
	events, unsub := m.Subscribe()
	defer unsub()
	rc := mustParse(webRecipe(os.Args[0], ""))
	spec := InstanceSpec{ID: "web1", Name: "web", Recipe: rc, State: StateStarted, Params: map[string]any{"message": "hello partitions"}}
	if err := m.Apply(spec); err != nil {
		t.Fatal(err)
	}
	st := waitPhase(t, m, "web1", PhaseRunning)
	if len(st.Promises) != 2 || !st.Promises[0].OK || !st.Promises[1].OK || !st.Healthy {
		t.Fatalf("promises %+v healthy %v", st.Promises, st.Healthy)
	}
	url := st.Connection["url"]
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), "hello partitions") {
		t.Fatalf("GET %s = %q", url, body)
	}
	if m.Free() != 2 {
		t.Errorf("free = %d, want 2", m.Free())
	}
	ps := m.Partitions()
	if ps[st.Partition].InstanceID != "web1" || ps[st.Partition].Phase != "running" {
		t.Errorf("partition %+v", ps[st.Partition])
	}
	// Apply again: idempotent.
	if err := m.Apply(spec); err != nil {
		t.Fatal(err)
	}
	// Stop, start, then destroy.
	pid := st.Processes[0].PID
	spec.State = StateStopped
	if err := m.Apply(spec); err != nil {
		t.Fatal(err)
	}
	waitPhase(t, m, "web1", PhaseStopped)
	if alive(pid) {
		t.Fatalf("pid %d alive after stop", pid)
	}
	spec.State = StateStarted
	if err := m.Apply(spec); err != nil {
		t.Fatal(err)
	}
	st = waitPhase(t, m, "web1", PhaseRunning)
	// Change params in place: restarted in the same partition with the new message.
	spec.Params = map[string]any{"message": "changed"}
	part := st.Partition
	if err := m.Apply(spec); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "new message served", func() bool {
		r, err := http.Get(url)
		if err != nil {
			return false
		}
		defer r.Body.Close()
		b, _ := io.ReadAll(r.Body)
		return strings.Contains(string(b), "changed")
	})
	st = waitPhase(t, m, "web1", PhaseRunning)
	if st.Partition != part {
		t.Errorf("moved from partition %d to %d", part, st.Partition)
	}
	// The subscriber merges what it has not delivered yet into each
	// instance's latest status, which is running: it must arrive (reading
	// only what is buffered right now could stop between two deliveries).
	deadline := time.After(30 * time.Second)
	for sawRunning := false; !sawRunning; {
		select {
		case e := <-events:
			sawRunning = e.ID == "web1" && e.Phase == PhaseRunning
		case <-deadline:
			t.Fatal("no running event")
		}
	}
	destroyAndCheck(t, m, spec, st)
}

// destroyAndCheck destroys the instance and checks nothing is left.
func destroyAndCheck(t *testing.T, m *Manager, spec InstanceSpec, st InstanceStatus) {
	t.Helper()
	dir := m.partDir(st.Partition)
	var pids []int
	for _, p := range st.Processes {
		pids = append(pids, p.PID)
		pids = append(pids, groupPids(p.PID)...)
	}
	cgDirs := m.cg.dirs(st.Partition)
	spec.State = StateDestroyed
	if err := m.Apply(spec); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "instance gone", func() bool { _, ok := m.Get(spec.ID); return !ok })
	for _, pid := range pids {
		if alive(pid) {
			t.Errorf("pid %d alive after destroy", pid)
		}
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("partition dir %s still there: %v", dir, err)
	}
	for _, d := range cgDirs {
		if _, err := os.Stat(d); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("cgroup %s still there", d)
		}
	}
	if m.Free() != len(m.slots) {
		t.Errorf("free = %d after destroy", m.Free())
	}
}

func TestDestroyKillsWholeTree(t *testing.T) {
	m := newTestManager(t, nil)
	// The service leaves a background child and a grandchild in its group.
	rc := mustParse(shRecipe("sleep 1000 & (sleep 1000 &) ; echo data > $HOME/f; exec sleep 1000", false, "always"))
	spec := InstanceSpec{ID: "tree", Recipe: rc, State: StateStarted}
	if err := m.Apply(spec); err != nil {
		t.Fatal(err)
	}
	st := waitPhase(t, m, "tree", PhaseRunning)
	waitFor(t, "children", func() bool { return len(groupPids(st.Processes[0].PID)) >= 3 })
	destroyAndCheck(t, m, spec, st)
}

func TestCrashRestartsWithBackoff(t *testing.T) {
	m := newTestManager(t, nil)
	rc := mustParse(shRecipe("echo start >> $HOME/starts; exit 3", false, "always"))
	if err := m.Apply(InstanceSpec{ID: "crashy", Recipe: rc, State: StateStarted}); err != nil {
		t.Fatal(err)
	}
	var st InstanceStatus
	waitFor(t, "3 restarts", func() bool {
		st, _ = m.Get("crashy")
		return len(st.Processes) == 1 && st.Processes[0].Restarts >= 3
	})
	if st.Processes[0].LastExit != "exit status 3" {
		t.Errorf("last exit %q", st.Processes[0].LastExit)
	}
	starts := strings.Count(readFileString(t, filepath.Join(m.partDir(st.Partition), "starts")), "start")
	if starts < 3 {
		t.Errorf("%d starts recorded", starts)
	}
	// on-failure: a clean exit completes.
	rc2 := mustParse(shRecipe("exit 0", false, "on-failure"))
	if err := m.Apply(InstanceSpec{ID: "clean", Recipe: rc2, State: StateStarted}); err != nil {
		t.Fatal(err)
	}
	waitPhase(t, m, "clean", PhaseCompleted)
}

func TestBackoffSequence(t *testing.T) {
	cfg := testConfig(t.TempDir())
	if err := cfg.validate(); err != nil {
		t.Fatal(err)
	}
	b := cfg.RestartBackoff
	var seq []time.Duration
	for i := 0; i < 6; i++ {
		seq = append(seq, b)
		b = min(b*2, cfg.RestartBackoffMax)
	}
	want := []time.Duration{20, 40, 80, 160, 200, 200}
	for i := range want {
		if seq[i] != want[i]*time.Millisecond {
			t.Fatalf("backoff %v, want %v ms", seq, want)
		}
	}
}

func TestPromiseFailureDetected(t *testing.T) {
	m := newTestManager(t, nil)
	// In its partition: the sandbox lets the server see nothing else.
	rc := mustParse(webRecipe(os.Args[0], "{{.Partition.Dir}}/fail"))
	if err := m.Apply(InstanceSpec{ID: "w", Recipe: rc, State: StateStarted}); err != nil {
		t.Fatal(err)
	}
	run := waitPhase(t, m, "w", PhaseRunning)
	fail := filepath.Join(m.partDir(run.Partition), "fail")
	if err := os.WriteFile(fail, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	var st InstanceStatus
	waitFor(t, "promise failure", func() bool {
		st, _ = m.Get("w")
		return !st.Healthy && !st.Promises[0].OK
	})
	if !strings.Contains(st.Promises[0].LastError, "HTTP 500") {
		t.Errorf("last error %q", st.Promises[0].LastError)
	}
	os.Remove(fail)
	waitFor(t, "recovery", func() bool { st, _ = m.Get("w"); return st.Healthy })
}

func TestBatchCompletesWithResult(t *testing.T) {
	store := &fakeResults{}
	m := newTestManager(t, func(c *Config) { c.Results = store })
	rc := mustParse(shRecipe("i=0; n=0; while [ $i -lt 100 ]; do i=$((i+1)); n=$((n+i)); done; echo $n > $WEFT_OUT/sum.txt", true, ""))
	if err := m.Apply(InstanceSpec{ID: "job", Recipe: rc, State: StateStarted}); err != nil {
		t.Fatal(err)
	}
	st := waitPhase(t, m, "job", PhaseCompleted)
	if got := readFileString(t, filepath.Join(st.ResultDir, "sum.txt")); got != "5050" {
		t.Errorf("sum.txt = %q", got)
	}
	waitFor(t, "result CID", func() bool { st, _ = m.Get("job"); return st.ResultCID != "" })
	if st.ResultCID != "cid:"+st.ResultDir {
		t.Errorf("result cid %q", st.ResultCID)
	}
	// A failing batch fails.
	rc2 := mustParse(shRecipe("echo run >> $HOME/runs; exit 7", true, ""))
	if err := m.Apply(InstanceSpec{ID: "bad", Recipe: rc2, State: StateStarted}); err != nil {
		t.Fatal(err)
	}
	st = waitPhase(t, m, "bad", PhaseFailed)
	if !strings.Contains(st.Error, "exit status 7") {
		t.Errorf("error %q", st.Error)
	}
	// Asking a failed instance to start again retries it.
	runs := filepath.Join(m.partDir(st.Partition), "runs")
	if err := m.SetState("bad", StateStarted); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "second run", func() bool {
		b, _ := os.ReadFile(runs)
		return strings.Count(string(b), "run") == 2
	})
	waitPhase(t, m, "bad", PhaseFailed)
}

type fakeResults struct{}

func (fakeResults) PutDir(_ context.Context, dir string) (string, error) { return "cid:" + dir, nil }

func TestApplyChecks(t *testing.T) {
	m := newTestManager(t, func(c *Config) { c.Partitions = 1 })
	rc := mustParse(shRecipe("exec sleep 1000", false, "always"))
	if err := m.Apply(InstanceSpec{ID: "a", Recipe: rc, State: StateStarted, Epoch: 5}); err != nil {
		t.Fatal(err)
	}
	if err := m.Apply(InstanceSpec{ID: "a", Recipe: rc, State: StateStarted, Epoch: 4}); !errors.Is(err, ErrStaleEpoch) {
		t.Errorf("stale epoch: %v", err)
	}
	if err := m.Apply(InstanceSpec{ID: "b", Recipe: rc, State: StateStarted}); !errors.Is(err, ErrNoFreePartition) {
		t.Errorf("second instance on one partition: %v", err)
	}
	if err := m.Apply(InstanceSpec{ID: "c", Recipe: rc, Type: "nope", State: StateStarted}); !errors.Is(err, ErrInvalidSpec) {
		t.Errorf("unknown type: %v", err)
	}
	if err := m.Apply(InstanceSpec{ID: "d", State: StateStarted}); !errors.Is(err, ErrInvalidSpec) {
		t.Errorf("no recipe: %v", err)
	}
	if err := m.Apply(InstanceSpec{ID: "zzz", State: StateDestroyed}); err != nil {
		t.Errorf("destroying an unknown instance: %v", err)
	}
	// A newer epoch with the same spec updates in place (no restart).
	st := waitPhase(t, m, "a", PhaseRunning)
	if err := m.Apply(InstanceSpec{ID: "a", Recipe: rc, State: StateStarted, Epoch: 6}); err != nil {
		t.Fatal(err)
	}
	st2, _ := m.Get("a")
	if st2.Epoch != 6 || st2.Processes[0].PID != st.Processes[0].PID {
		t.Errorf("epoch bump: %+v", st2)
	}
	l := m.Limits()
	if l.Summary == "" || (!l.Enforced && !strings.HasPrefix(l.Summary, "limits not enforced: ")) {
		t.Errorf("limits %+v", l)
	}
	t.Logf("limits: %s", l.Summary)
}

// A node killed with SIGKILL leaves its instances running; the next run
// re-adopts them (same pid, verified by start time) and leaves no orphan.
func TestNodeKill9ReadoptsInstances(t *testing.T) {
	dir := t.TempDir()
	base := freePortBase(t, 6)
	node := exec.Command(os.Args[0], dir, strconv.Itoa(base))
	node.Env = append(os.Environ(), "WEFT_PARTITION_HELPER=node")
	node.Stderr = os.Stderr
	out, err := node.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := node.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		node.Process.Kill()
		t.Fatal(err)
	}
	var before InstanceStatus
	if err := json.Unmarshal([]byte(line), &before); err != nil {
		t.Fatal(err)
	}
	pid := before.Processes[0].PID
	if err := node.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	node.Wait()
	if !alive(pid) {
		t.Fatalf("instance process %d died with the node", pid)
	}

	cfg := testConfig(dir)
	cfg.PortBase = base
	m := startManager(t, cfg)
	st := waitPhase(t, m, "web", PhaseRunning)
	if st.Processes[0].PID != pid || !st.Processes[0].Adopted {
		t.Fatalf("not re-adopted: %+v (old pid %d)", st.Processes[0], pid)
	}
	resp, err := http.Get(st.Connection["url"])
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(b), "survivor") {
		t.Fatalf("served %q", b)
	}
	// The adopted process crashes: it is restarted as a child of this run.
	killPid(t, pid)
	waitFor(t, "restart after adopted crash", func() bool {
		st, _ = m.Get("web")
		return st.Phase == PhaseRunning && st.Processes[0].Running && st.Processes[0].PID != pid && !st.Processes[0].Adopted
	})
	newPid := st.Processes[0].PID
	m.Close()
	if alive(newPid) || alive(pid) {
		t.Errorf("orphans after Close: %d %v, %d %v", newPid, alive(newPid), pid, alive(pid))
	}
	// Next run: desired state still there; the instance starts again.
	m2 := startManager(t, cfg)
	defer m2.Close()
	waitPhase(t, m2, "web", PhaseRunning)
}

// A node that died while an instance process also died restarts it.
func TestRestartAfterNodeAndInstanceDied(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(dir)
	cfg.PortBase = freePortBase(t, 6)
	cfg.KeepRunningOnClose = true
	m := startManager(t, cfg)
	rc := mustParse(shRecipe("exec sleep 1000", false, "always"))
	if err := m.Apply(InstanceSpec{ID: "s", Recipe: rc, State: StateStarted}); err != nil {
		t.Fatal(err)
	}
	st := waitPhase(t, m, "s", PhaseRunning)
	m.Close() // processes left running, like a crash
	pid := st.Processes[0].PID
	killPid(t, pid)
	waitFor(t, "process gone", func() bool { return !alive(pid) })
	cfg.KeepRunningOnClose = false
	m2 := startManager(t, cfg)
	defer m2.Close()
	st = waitPhase(t, m2, "s", PhaseRunning)
	if st.Processes[0].PID == pid || st.Processes[0].Adopted {
		t.Errorf("not restarted: %+v", st.Processes[0])
	}
}

// Metering: a process burns a known amount of CPU (measured by itself with
// getrusage); the metered CPU of the slice matches within 10 %.
func TestMeteringCPUBurn(t *testing.T) {
	for _, cg := range []bool{true, false} {
		t.Run("cgroups="+strconv.FormatBool(cg), func(t *testing.T) {
			m := newTestManager(t, func(c *Config) { c.Cgroups = cg })
			if cg && m.cg.version == "none" {
				t.Skip("no cgroups here: " + strings.Join(m.cg.why, "; "))
			}
			// Written in its partition: the sandbox lets it write nowhere else.
			rc := mustParse(`
name = "burn"
version = "1"
[resources]
cpu_millis = 4000
[types.default]
batch = true
[[types.default.processes]]
name = "burn"
command = "` + os.Args[0] + `"
args = ["500", "{{.Partition.Dir}}/cpu"]
env = { WEFT_PARTITION_HELPER = "burn" }
`)
			from := time.Now().Add(-time.Second)
			if err := m.Apply(InstanceSpec{ID: "burn", Recipe: rc, State: StateStarted}); err != nil {
				t.Fatal(err)
			}
			st := waitPhase(t, m, "burn", PhaseCompleted)
			outFile := filepath.Join(m.partDir(st.Partition), "cpu")
			self, err := strconv.ParseInt(readFileString(t, outFile), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			u, err := m.Usage("burn", from, time.Now().Add(time.Second))
			if err != nil {
				t.Fatal(err)
			}
			ratio := float64(u.CPUNanos) / float64(self)
			t.Logf("burn measured %d ns by itself, metered %d ns (ratio %.3f), mem avg %d peak %d disk %d",
				self, u.CPUNanos, ratio, u.MemAvgBytes, u.MemPeakBytes, u.DiskBytes)
			if ratio < 0.9 || ratio > 1.1 {
				t.Errorf("metered CPU off by more than 10%%: ratio %.3f", ratio)
			}
			if u.MemPeakBytes <= 0 || u.NetBytes != -1 {
				t.Errorf("mem peak %d net %d", u.MemPeakBytes, u.NetBytes)
			}
		})
	}
}

// Under root, partitions run as different users and cannot read each
// other's files.
func TestPartitionIsolationUnderRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("partition isolation needs the node to run as root (separate Unix users); not root here")
	}
	if _, err := exec.LookPath("useradd"); err != nil {
		t.Skip("no useradd on this host")
	}
	dir := t.TempDir()
	for d := dir; d != "/" && d != os.TempDir(); d = filepath.Dir(d) {
		os.Chmod(d, 0o711) // t.TempDir's parents are 0700
	}
	cfg := testConfig(dir)
	cfg.PortBase = freePortBase(t, 6)
	cfg.Users = true
	cfg.UserPrefix = "wefttest"
	cfg.InstallUser = "wefttestinstall"
	m := startManager(t, cfg)
	defer m.Close()
	secret := mustParse(shRecipe("echo top-secret > $HOME/secret; id -u > $HOME/uid; exec sleep 1000", false, "always"))
	if err := m.Apply(InstanceSpec{ID: "a", Recipe: secret, State: StateStarted}); err != nil {
		t.Fatal(err)
	}
	sa := waitPhase(t, m, "a", PhaseRunning)
	aDir := m.partDir(sa.Partition)
	waitFor(t, "secret written", func() bool { _, err := os.Stat(filepath.Join(aDir, "uid")); return err == nil })
	thief := mustParse(shRecipe("id -u > $WEFT_OUT/uid; if cat "+aDir+"/secret > $WEFT_OUT/stolen 2>$WEFT_OUT/err; then echo read > $WEFT_OUT/rc; else echo denied > $WEFT_OUT/rc; fi", true, ""))
	if err := m.Apply(InstanceSpec{ID: "b", Recipe: thief, State: StateStarted}); err != nil {
		t.Fatal(err)
	}
	sb := waitPhase(t, m, "b", PhaseCompleted)
	if rc := readFileString(t, filepath.Join(sb.ResultDir, "rc")); rc != "denied" {
		t.Errorf("partition b could read partition a's file: %s", rc)
	}
	uidA := readFileString(t, filepath.Join(aDir, "uid"))
	uidB := readFileString(t, filepath.Join(sb.ResultDir, "uid"))
	if uidA == uidB || uidA == "0" || uidB == "0" {
		t.Errorf("uids a=%s b=%s", uidA, uidB)
	}
	fi, err := os.Stat(aDir)
	if err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("partition dir mode %v %v", fi.Mode(), err)
	}
	if !m.Limits().Users {
		t.Error("limits do not report users")
	}
}

// An instance that plants symlinks in its partition cannot make the node
// (root) write through them when it restarts the instance.
func TestSymlinksInPartitionNotFollowed(t *testing.T) {
	m := newTestManager(t, nil)
	victimDir := t.TempDir()
	victim := filepath.Join(victimDir, "victim")
	if err := os.WriteFile(victim, []byte("orig"), 0o644); err != nil {
		t.Fatal(err)
	}
	rc := mustParse(`
name = "evil"
version = "1"
[params.v]
default = "1"
[types.default]
[[types.default.files]]
path = "conf/app.conf"
content = "v={{.Params.v}}"
template = true
[[types.default.processes]]
name = "main"
command = "/bin/sh"
args = ["-c", "rm -rf $HOME/conf && ln -s ` + victimDir + ` $HOME/conf && rm -f $HOME/log/main.log && ln -s ` + victim + ` $HOME/log/main.log && touch $HOME/planted && exec sleep 1000"]
`)
	if err := m.Apply(InstanceSpec{ID: "evil", Recipe: rc, State: StateStarted}); err != nil {
		t.Fatal(err)
	}
	st := waitPhase(t, m, "evil", PhaseRunning)
	waitFor(t, "symlinks planted", func() bool {
		_, err := os.Stat(filepath.Join(m.partDir(st.Partition), "planted"))
		return err == nil
	})
	// A params change restarts it: the node rewrites conf/app.conf and reopens the log.
	if err := m.Apply(InstanceSpec{ID: "evil", Recipe: rc, State: StateStarted, Params: map[string]any{"v": "2"}}); err != nil {
		t.Fatal(err)
	}
	st = waitPhase(t, m, "evil", PhaseFailed)
	if !strings.Contains(st.Error, "symlink") {
		t.Errorf("error %q", st.Error)
	}
	if got := readFileString(t, victim); got != "orig" {
		t.Errorf("victim file changed: %q", got)
	}
	if _, err := os.Stat(filepath.Join(victimDir, "app.conf")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("file written through the planted symlink: %v", err)
	}
}

// A service that keeps crashing past its restart budget fails for good,
// with the reason: its last exit and the budget (the host then ends its
// billing and frees its partition).
func TestCrashLoopPastTheRestartBudgetFails(t *testing.T) {
	m := newTestManager(t, func(c *Config) { c.RestartBudget = 3 })
	rc := mustParse(shRecipe("exit 3", false, "always"))
	if err := m.Apply(InstanceSpec{ID: "crashloop", Recipe: rc, State: StateStarted}); err != nil {
		t.Fatal(err)
	}
	st := waitPhase(t, m, "crashloop", PhaseFailed)
	if !strings.Contains(st.Error, "exit status 3") || !strings.Contains(st.Error, "restart budget exhausted") {
		t.Fatalf("reason %q", st.Error)
	}
}

// An instance stopped before it ever started shows stopped, not pending,
// and holds no partition; started again, it runs.
func TestStoppedBeforeItStarted(t *testing.T) {
	m := newTestManager(t, nil)
	rc := mustParse(shRecipe("sleep 60", false, "always"))
	if err := m.Apply(InstanceSpec{ID: "never", Recipe: rc, State: StateStopped}); err != nil {
		t.Fatal(err)
	}
	if st := waitPhase(t, m, "never", PhaseStopped); st.Partition >= 0 {
		t.Fatalf("stopped before it started holds partition %d", st.Partition)
	}
	if err := m.Apply(InstanceSpec{ID: "never", Recipe: rc, State: StateStarted}); err != nil {
		t.Fatal(err)
	}
	waitPhase(t, m, "never", PhaseRunning)
}
