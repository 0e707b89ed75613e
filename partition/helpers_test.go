package partition

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/weftgrid/weft/recipes"
)

// The test binary doubles as the programs instances run: with
// WEFT_PARTITION_HELPER set, TestMain runs a helper instead of the tests.
func TestMain(m *testing.M) {
	switch os.Getenv("WEFT_PARTITION_HELPER") {
	case "":
		os.Exit(m.Run())
	case "httpd":
		helperHTTPD(os.Args[1:])
	case "burn":
		helperBurn(os.Args[1:])
	case "node":
		helperNode(os.Args[1:])
	case "try":
		helperTry(os.Args[1:])
	case "netpeer":
		helperNetPeer(os.Args[1:])
	default:
		fmt.Fprintln(os.Stderr, "unknown helper")
		os.Exit(2)
	}
}

// helperHTTPD ADDR MESSAGE [FAILFILE]: serves MESSAGE on /, 200 on /healthz
// unless FAILFILE exists (then 500).
func helperHTTPD(args []string) {
	addr, msg := args[0], args[1]
	fail := ""
	if len(args) > 2 {
		fail = args[2]
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, msg) })
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		if fail != "" {
			if _, err := os.Stat(fail); err == nil {
				http.Error(w, "failing on purpose", http.StatusInternalServerError)
				return
			}
		}
		fmt.Fprintln(w, "ok")
	})
	fmt.Println("listening on", addr)
	if err := http.ListenAndServe(addr, mux); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// helperBurn MILLIS OUTFILE: spins until this process used MILLIS of CPU,
// then writes its own CPU time (getrusage, nanoseconds) to OUTFILE.
func helperBurn(args []string) {
	ms, _ := strconv.Atoi(args[0])
	var ru syscall.Rusage
	cpu := func() int64 {
		_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
		return ru.Utime.Nano() + ru.Stime.Nano()
	}
	x := 0
	for cpu() < int64(ms)*int64(time.Millisecond) {
		for i := 0; i < 1_000_000; i++ {
			x += i ^ x
		}
	}
	if err := os.WriteFile(args[1], []byte(strconv.FormatInt(cpu(), 10)), 0o644); err != nil {
		os.Exit(1)
	}
	if x == 42 { // keep the loop from being optimized away
		fmt.Print("")
	}
	os.Exit(0)
}

// helperNode DATADIR PORTBASE: a node that runs one web instance and waits
// to be killed with SIGKILL (processes are left running for re-adoption).
func helperNode(args []string) {
	cfg := testConfig(args[0])
	cfg.PortBase, _ = strconv.Atoi(args[1])
	cfg.KeepRunningOnClose = true
	m, err := New(cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if err := m.Start(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	rc := mustParse(webRecipe(os.Args[0], ""))
	if err := m.Apply(InstanceSpec{ID: "web", Recipe: rc, State: StateStarted, Params: map[string]any{"message": "survivor"}}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	for {
		st, _ := m.Get("web")
		if st.Phase == PhaseRunning {
			// The pids are on disk before the test kills this node (the
			// flusher writes them a little later otherwise).
			m.mu.Lock()
			err := m.saveLocked()
			m.mu.Unlock()
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(1)
			}
			b, _ := json.Marshal(st)
			fmt.Println(string(b))
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	select {}
}

func testConfig(dir string) Config {
	cfg := DefaultConfig()
	cfg.DataDir = dir
	cfg.Partitions = 3
	cfg.PortsPerPartition = 2
	cfg.Users = false // the test binary lives in a directory only root can enter
	// Tests that turn Users on share these (a node's default prefix
	// depends on its data dir: a new set of users per temporary dir).
	cfg.UserPrefix = "wefttest"
	cfg.StopGrace = 2 * time.Second
	cfg.RestartBackoff = 20 * time.Millisecond
	cfg.RestartBackoffMax = 200 * time.Millisecond
	cfg.ReconcileInterval = 200 * time.Millisecond
	cfg.SampleInterval = 100 * time.Millisecond
	cfg.DiskInterval = 500 * time.Millisecond
	return cfg
}

// freePortBase finds n consecutive free ports (best effort).
func freePortBase(t testing.TB, n int) int {
	for try := 0; try < 50; try++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		base := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if base+n >= 65535 {
			continue
		}
		ok := true
		for p := base; p < base+n; p++ {
			if l2, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p)); err != nil {
				ok = false
				break
			} else {
				l2.Close()
			}
		}
		if ok {
			return base
		}
	}
	t.Fatal("no free port range")
	return 0
}

func newTestManager(t *testing.T, mut func(*Config)) *Manager {
	t.Helper()
	cfg := testConfig(t.TempDir())
	cfg.PortBase = freePortBase(t, cfg.Partitions*cfg.PortsPerPartition)
	if mut != nil {
		mut(&cfg)
	}
	m := startManager(t, cfg)
	t.Cleanup(func() { m.Close() })
	return m
}

func mustParse(src string) *recipes.Recipe {
	r, err := recipes.Parse("test.toml", []byte(src))
	if err != nil {
		panic(fmt.Sprintf("%v\n%s", err, src))
	}
	return r
}

// webRecipe runs the httpd helper (bin) with an HTTP promise; failFile, if
// set, makes /healthz fail while it exists.
func webRecipe(bin, failFile string) string {
	extra := ""
	if failFile != "" {
		extra = fmt.Sprintf(", %q", failFile)
	}
	return fmt.Sprintf(`
name = "web"
version = "1"
[params.message]
default = "hello"
[resources]
cpu_millis = 1000
memory = "256MiB"
[types.default]
ports = ["http"]
[[types.default.processes]]
name = "httpd"
command = %q
args = ["{{.Host}}:{{.Ports.http}}", "{{.Params.message}}"%s]
env = { WEFT_PARTITION_HELPER = "httpd" }
[[types.default.promises]]
name = "health"
kind = "http"
target = "http://{{.Host}}:{{.Ports.http}}/healthz"
period = "200ms"
timeout = "200ms"
[[types.default.promises]]
name = "port"
kind = "tcp"
target = "{{.Host}}:{{.Ports.http}}"
when = "test"
[types.default.connection]
url = "http://{{.Host}}:{{.Ports.http}}/"
`, bin, extra)
}

// shRecipe runs one /bin/sh script as a service or batch.
func shRecipe(script string, batch bool, restart string) string {
	return fmt.Sprintf(`
name = "sh"
version = "1"
[resources]
cpu_millis = 2000
memory = "256MiB"
[types.default]
batch = %v
[[types.default.processes]]
name = "main"
command = "/bin/sh"
args = ["-c", %q]
restart = %q
`, batch, script, restart)
}

// installRecipe is a service recipe named name whose install step runs
// the shell command install and whose process sleeps.
func installRecipe(name, install string) string {
	return fmt.Sprintf(`
name = %q
version = "1"
[install]
commands = [%q]
[types.default]
[[types.default.processes]]
name = "main"
command = "/bin/sh"
args = ["-c", "exec sleep 1000"]
`, name, install)
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func waitPhase(t testing.TB, m *Manager, id string, ph Phase) InstanceStatus {
	t.Helper()
	var st InstanceStatus
	waitFor(t, fmt.Sprintf("%s to be %s", id, ph), func() bool {
		var ok bool
		st, ok = m.Get(id)
		return ok && st.Phase == ph
	})
	return st
}

func alive(pid int) bool {
	s, ok := readProcStat(pid)
	return ok && s.State != 'Z'
}

// groupPids lists live processes in process group pgid.
func groupPids(pgid int) []int {
	return groupMembers(scanProcs(), map[int]bool{pgid: true})
}

func readFileString(t testing.TB, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

var _ = filepath.Join

// killPid sends SIGKILL to one real process (never to a group: pid 0 or
// below would hit the test's own process group).
func killPid(t testing.TB, pid int) {
	t.Helper()
	if pid <= 0 {
		t.Fatalf("refusing to kill pid %d", pid)
	}
	_ = syscall.Kill(pid, syscall.SIGKILL)
}

// startManager opens and starts a Manager on cfg (the caller closes it).
func startManager(t testing.TB, cfg Config) *Manager {
	t.Helper()
	m, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	return m
}

// letInstallsWrite lets m's install sandboxes read and write dirs (where
// tests count install runs or gate them).
func letInstallsWrite(m *Manager, dirs ...string) { m.installRW = append(m.installRW, dirs...) }
