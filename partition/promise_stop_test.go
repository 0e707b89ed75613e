package partition

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/weftgrid/weft/recipes"
)

// A health endpoint that sends its status line and then stalls until the
// promise's timeout has not answered: the check must fail, not pass on the
// status alone.
func TestHTTPPromiseBodyTimeoutFails(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
		w.Write([]byte("partial"))
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(l)
	defer srv.Close()
	m := &Manager{dir: t.TempDir()}
	pr := recipes.Promise{Kind: recipes.PromiseHTTP, Target: "http://" + l.Addr().String() + "/",
		Timeout: recipes.Duration(200 * time.Millisecond)}
	if err := m.checkPromise(context.Background(), &runState{}, pr); err == nil {
		t.Fatal("HTTP promise passed although the response never finished within its timeout")
	}
}

// A command promise that exits 0 but leaves a background child (holding
// its output) passes, and the child does not outlive the check.
func TestCommandPromiseLeavesNoProcess(t *testing.T) {
	m := &Manager{dir: t.TempDir()}
	if err := os.MkdirAll(m.partDir(0), 0o700); err != nil {
		t.Fatal(err)
	}
	pidFile := filepath.Join(t.TempDir(), "child")
	pr := recipes.Promise{Kind: recipes.PromiseCommand, Timeout: recipes.Duration(30 * time.Second),
		Command: fmt.Sprintf("sleep 1000 & echo $! > %s; echo ok", pidFile)}
	err := m.checkPromise(context.Background(), &runState{env: []string{"PATH=/usr/bin:/bin"}}, pr)
	pid, perr := strconv.Atoi(readFileString(t, pidFile))
	if perr != nil || pid <= 0 {
		t.Fatalf("child pid %q", readFileString(t, pidFile))
	}
	defer killPid(t, pid)
	if err != nil {
		t.Errorf("command exited 0, promise failed: %v", err)
	}
	waitFor(t, "the promise's child to be gone", func() bool { return !alive(pid) })
}

// A process that exited long ago (restart = "never") is not signalled at
// stop: its pid may belong to another process by then.
func TestStopDoesNotSignalReusedPid(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to choose the next pid (ns_last_pid)")
	}
	if os.Getenv("WEFT_TEST_IN_PIDNS") == "" {
		// Rewinding the pid counter of the machine's pid namespace hands
		// recently freed pids to whatever else runs meanwhile (other test
		// binaries of the suite): the test runs again, alone, in a pid
		// namespace of its own, where the rewind touches nothing else.
		unshare, err := exec.LookPath("unshare")
		if err != nil {
			t.Skip("no unshare(1) to run the test in a pid namespace of its own")
		}
		cmd := exec.Command(unshare, "--pid", "--fork", "--mount-proc", os.Args[0],
			"-test.run=^TestStopDoesNotSignalReusedPid$", "-test.count=1", "-test.v")
		cmd.Env = append(os.Environ(), "WEFT_TEST_IN_PIDNS=1")
		out, err := cmd.CombinedOutput()
		switch {
		case err != nil:
			t.Fatalf("in a pid namespace of its own: %v\n%s", err, out)
		case strings.Contains(string(out), "--- SKIP: TestStopDoesNotSignalReusedPid"):
			t.Skipf("skipped in its pid namespace:\n%s", out)
		case !strings.Contains(string(out), "--- PASS: TestStopDoesNotSignalReusedPid"):
			t.Fatalf("in a pid namespace of its own, no pass:\n%s", out)
		}
		return
	}
	m := newTestManager(t, nil)
	rc := mustParse(`
name = "two"
version = "1"
[types.default]
[[types.default.processes]]
name = "init"
command = "/bin/sh"
args = ["-c", "exit 0"]
restart = "never"
[[types.default.processes]]
name = "main"
command = "/bin/sh"
args = ["-c", "exec sleep 1000"]
`)
	spec := InstanceSpec{ID: "two", Recipe: rc, State: StateStarted}
	if err := m.Apply(spec); err != nil {
		t.Fatal(err)
	}
	var initPid int
	waitFor(t, "init to have exited for good", func() bool {
		m.mu.Lock()
		defer m.mu.Unlock()
		in := m.insts["two"]
		if in == nil || in.run == nil || in.run.finished < 1 {
			return false
		}
		for _, p := range in.run.procs {
			if p.name == "init" && !p.running {
				initPid = p.pid
			}
		}
		return initPid > 0
	})
	// Another process, leading its own group, gets init's old pid.
	var decoy *exec.Cmd
	for try := 0; try < 20 && decoy == nil; try++ {
		if err := os.WriteFile("/proc/sys/kernel/ns_last_pid", []byte(strconv.Itoa(initPid-1)), 0); err != nil {
			t.Skipf("cannot choose the next pid: %v", err)
		}
		c := exec.Command("sleep", "1000")
		c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		if c.Process.Pid == initPid {
			decoy = c
		} else {
			c.Process.Kill()
			c.Wait()
		}
	}
	if decoy == nil {
		t.Skip("could not get the exited process's pid again")
	}
	exited := make(chan struct{})
	go func() { decoy.Wait(); close(exited) }()
	defer func() { decoy.Process.Kill(); <-exited }()
	if err := m.SetState("two", StateStopped); err != nil {
		t.Fatal(err)
	}
	waitPhase(t, m, "two", PhaseStopped)
	select {
	case <-exited:
		t.Fatalf("stop killed pid %d, which no longer was the instance's: %v", initPid, decoy.ProcessState)
	default:
	}
}

// Instances left running (KeepRunningOnClose) are not re-adopted on ports
// that are no longer their partition's (port_base changed meanwhile): they
// would keep ports of another partition's range while their promises and
// connection use the new ones.
func TestNoAdoptionWhenPortsChanged(t *testing.T) {
	dir := t.TempDir()
	base := freePortBase(t, 12)
	cfg := testConfig(dir)
	cfg.PortBase = base
	cfg.KeepRunningOnClose = true
	m := startManager(t, cfg)
	rc := mustParse(webRecipe(os.Args[0], ""))
	if err := m.Apply(InstanceSpec{ID: "web", Recipe: rc, State: StateStarted}); err != nil {
		t.Fatal(err)
	}
	st := waitPhase(t, m, "web", PhaseRunning)
	oldPid := st.Processes[0].PID
	m.Close()
	defer func() {
		if alive(oldPid) {
			killPid(t, oldPid)
		}
	}()

	cfg.PortBase = base + 6
	cfg.KeepRunningOnClose = false
	m2 := startManager(t, cfg)
	defer m2.Close()
	lo, _ := m2.portRange(st.Partition)
	waitFor(t, "web running on its new ports", func() bool {
		st, _ = m2.Get("web")
		return st.Phase == PhaseRunning && st.Ports["http"] == lo
	})
	if st.Processes[0].Adopted || alive(oldPid) {
		t.Errorf("process on the old ports kept: adopted %v, old pid %d alive %v", st.Processes[0].Adopted, oldPid, alive(oldPid))
	}
}
