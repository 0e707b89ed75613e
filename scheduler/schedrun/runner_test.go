package schedrun

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/weftgrid/weft/partition"
	"github.com/weftgrid/weft/recipes/store"
	"github.com/weftgrid/weft/scheduler"
)

// A completed batch job whose output cannot be stored (here a FIFO in
// out/) must be reported failed with the reason, not pending "storing the
// result" forever (weft job run --wait would wait out its whole timeout).
func TestRunnerReportsUnstorableResult(t *testing.T) {
	st, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	out := filepath.Join(t.TempDir(), "out")
	if err := syscall.Mkdir(out, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(out, "pipe"), 0o600); err != nil {
		t.Fatal(err)
	}
	parts := fakeParts{st: map[string]partition.InstanceStatus{
		"job": {ID: "job", Phase: partition.PhaseCompleted, Batch: true, State: partition.StateStarted, ResultDir: out,
			Error: "store result: store: put dir: store: pipe: only regular files, directories and symbolic links can be stored"},
	}}
	r := NewRunner(parts, Content{Store: st}, t.TempDir())
	// Storing runs off the market's loop: pending "storing the result"
	// until the store has answered.
	rs := waitStatus(t, r, "job", func(rs scheduler.RunStatus) bool { return rs.Reason != "storing the result" })
	if rs.State != scheduler.StateFailed || rs.Reason == "" {
		t.Fatalf("unstorable result reported as %v (%q), want failed with the reason", rs.State, rs.Reason)
	}
}

// waitStatus polls r.Status(id) until done accepts it (10 s at most).
func waitStatus(t *testing.T, r *Runner, id scheduler.InstanceID, done func(scheduler.RunStatus) bool) scheduler.RunStatus {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		rs, ok := r.Status(id)
		if ok && done(rs) {
			return rs
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still %v %q (reported %v)", id, rs.State, rs.Reason, ok)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// A completed batch whose output directory the manager did not store is
// stored by the runner, off the loop, once per run.
func TestRunnerStoresResultOffTheLoop(t *testing.T) {
	st, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	out := filepath.Join(t.TempDir(), "out")
	if err := os.MkdirAll(out, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(out, "answer"), []byte("42\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	parts := fakeParts{st: map[string]partition.InstanceStatus{
		"job": {ID: "job", Phase: partition.PhaseCompleted, Batch: true, State: partition.StateStarted, ResultDir: out},
	}}
	r := NewRunner(parts, Content{Store: st}, t.TempDir())
	rs := waitStatus(t, r, "job", func(rs scheduler.RunStatus) bool { return rs.State != scheduler.StatePending })
	if rs.State != scheduler.StateDone || rs.Result == "" {
		t.Fatalf("stored result reported as %v %q (%q)", rs.State, rs.Result, rs.Reason)
	}
	if again, _ := r.Status("job"); again.Result != rs.Result {
		t.Fatalf("result changed from %s to %s", rs.Result, again.Result)
	}
}

// blockingLogs is a runtime whose logs open only when released.
type blockingLogs struct {
	fakeParts
	release chan struct{}
	path    string
}

func (b blockingLogs) OpenLog(id, name string) (*os.File, error) {
	<-b.release
	return os.Open(b.path)
}

// Status runs on the market's state loop: a failed run's log is read off
// it, and the failure is reported once, with its last log lines — until
// they are read, the status reported last stands.
func TestRunnerReadsFailedLogOffTheLoop(t *testing.T) {
	logf := filepath.Join(t.TempDir(), "main.log")
	if err := os.WriteFile(logf, []byte("listening\npanic: out of cheese\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	proc := partition.ProcessStatus{Name: "main", Running: true}
	parts := blockingLogs{fakeParts{st: map[string]partition.InstanceStatus{
		"svc": {ID: "svc", Phase: partition.PhaseRunning, Healthy: true, State: partition.StateStarted, Processes: []partition.ProcessStatus{proc}},
	}}, make(chan struct{}), logf}
	r := NewRunner(parts, Content{}, t.TempDir())
	if rs, _ := r.Status("svc"); rs.State != scheduler.StateStarted {
		t.Fatalf("running service reported %v", rs.State)
	}
	proc.Running, proc.LastExit = false, "exit status 2"
	parts.st["svc"] = partition.InstanceStatus{ID: "svc", Phase: partition.PhaseFailed, Error: "process main: exit status 2", Processes: []partition.ProcessStatus{proc}}
	for range 3 {
		if rs, _ := r.Status("svc"); rs.State != scheduler.StateStarted {
			t.Fatalf("failure reported as %v %q before its log lines were read (or Status read the log itself)", rs.State, rs.Reason)
		}
	}
	close(parts.release)
	rs := waitStatus(t, r, "svc", func(rs scheduler.RunStatus) bool { return rs.State != scheduler.StateStarted })
	if rs.State != scheduler.StateFailed || rs.Reason != "process main: exit status 2; last log lines: listening | panic: out of cheese" {
		t.Fatalf("failure reported as %v %q", rs.State, rs.Reason)
	}
	delete(parts.st, "svc")
	if _, ok := r.Status("svc"); ok {
		t.Fatal("a gone instance reported")
	}
}

// fakeParts is a partition runtime holding statuses.
type fakeParts struct {
	st map[string]partition.InstanceStatus
}

func (f fakeParts) Apply(partition.InstanceSpec) error { return nil }
func (f fakeParts) Get(id string) (partition.InstanceStatus, bool) {
	s, ok := f.st[id]
	return s, ok
}
func (f fakeParts) Free() int { return 3 }

func TestPartitionRunnerStatus(t *testing.T) {
	parts := fakeParts{st: map[string]partition.InstanceStatus{
		"svc":    {ID: "svc", Phase: partition.PhaseRunning, State: partition.StateStarted, Connection: map[string]string{"url": "u"}},
		"batch":  {ID: "batch", Phase: partition.PhaseRunning, Batch: true, State: partition.StateStarted},
		"done":   {ID: "done", Phase: partition.PhaseCompleted, Batch: true, ResultCID: "bafyres"},
		"failed": {ID: "failed", Phase: partition.PhaseFailed, Error: "install failed"},
		"inst":   {ID: "inst", Phase: partition.PhaseInstalling},
		"stop":   {ID: "stop", Phase: partition.PhaseStopped, State: partition.StateStopped},
	}}
	r := &Runner{parts: parts}
	want := map[string]scheduler.State{"svc": scheduler.StateStarted, "batch": scheduler.StatePending, "done": scheduler.StateDone,
		"failed": scheduler.StateFailed, "inst": scheduler.StatePending, "stop": scheduler.StateStopped}
	for id, w := range want {
		rs, ok := r.Status(scheduler.InstanceID(id))
		if !ok || rs.State != w {
			t.Errorf("%s: %v %v, want %v", id, rs.State, ok, w)
		}
	}
	if rs, _ := r.Status("svc"); rs.Connection["url"] != "u" {
		t.Errorf("connection not passed: %v", rs.Connection)
	}
	if rs, _ := r.Status("done"); rs.Result != "bafyres" {
		t.Errorf("result %q", rs.Result)
	}
	if rs, _ := r.Status("failed"); rs.Reason != "install failed" {
		t.Errorf("reason %q", rs.Reason)
	}
	if _, ok := r.Status("unknown"); ok {
		t.Error("unknown instance reported")
	}
	if _, _, free := r.Capacity(); free != 3 {
		t.Errorf("free partitions %d", free)
	}
}

func TestCommandVeto(t *testing.T) {
	ann := &scheduler.Announcement{Name: "web", RecipeCID: "bafy", Instance: "ab"}
	ctx := context.Background()
	allow, _, err := CommandVeto{Command: `grep -q '"name":"web"'`, Timeout: 5 * time.Second}.Veto(ctx, ann)
	if err != nil || !allow {
		t.Fatalf("hook reading the announcement on stdin: allow %v, %v", allow, err)
	}
	allow, reason, err := CommandVeto{Command: "echo 'no web here'; exit 3", Timeout: 5 * time.Second}.Veto(ctx, ann)
	if err != nil || allow || reason != "no web here" {
		t.Fatalf("vetoing hook: allow %v reason %q err %v", allow, reason, err)
	}
	allow, reason, _ = CommandVeto{Command: "sleep 5", Timeout: 100 * time.Millisecond}.Veto(ctx, ann)
	if allow || !strings.Contains(reason, "timed out") {
		t.Fatalf("slow hook: allow %v reason %q", allow, reason)
	}
}

// The host's health verdict: failing when failed, when a promise fails or
// a service's process is down between restarts; ok when running with its
// promises passing; unknown otherwise. Restarts add up; the last exit is
// named with its process.
func TestHealthVerdict(t *testing.T) {
	up := partition.ProcessStatus{Name: "web", Running: true, Restarts: 2, LastExit: "exit status 1"}
	down := partition.ProcessStatus{Name: "db", Restarts: 5, LastExit: "signal: killed"}
	for _, c := range []struct {
		name string
		st   partition.InstanceStatus
		want scheduler.Health
	}{
		{"running", partition.InstanceStatus{Phase: partition.PhaseRunning, Healthy: true, Processes: []partition.ProcessStatus{up}}, scheduler.HealthOK},
		{"promise failing", partition.InstanceStatus{Phase: partition.PhaseRunning, Processes: []partition.ProcessStatus{up}}, scheduler.HealthFailing},
		{"crash loop", partition.InstanceStatus{Phase: partition.PhaseRunning, Healthy: true, Processes: []partition.ProcessStatus{up, down}}, scheduler.HealthFailing},
		{"failed", partition.InstanceStatus{Phase: partition.PhaseFailed}, scheduler.HealthFailing},
		{"installing", partition.InstanceStatus{Phase: partition.PhaseInstalling}, scheduler.HealthUnknown},
	} {
		h, restarts, last := health(c.st)
		if h != c.want {
			t.Errorf("%s: %s, want %s", c.name, h, c.want)
		}
		if c.name == "crash loop" && (restarts != 7 || last != "db: signal: killed") {
			t.Errorf("crash loop: %d restarts, last exit %q", restarts, last)
		}
	}
}

// The failure's reason ends with the failing process's last log lines:
// the last non-empty ones, control characters replaced, bounded.
func TestTailLines(t *testing.T) {
	p := filepath.Join(t.TempDir(), "main.log")
	body := strings.Repeat("filler line\n", 400) + "starting\n\nerror: cannot bind :80\x1b[31m\nexit now\n"
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got := tailLines(f, 3)
	if got != "starting | error: cannot bind :80?[31m | exit now" {
		t.Fatalf("tail %q", got)
	}
	if len(tailLines(f, 1000)) > 300 {
		t.Fatal("tail longer than 300 bytes")
	}
}
