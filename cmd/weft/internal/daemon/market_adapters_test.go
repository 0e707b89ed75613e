package daemon

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/weftgrid/weft/partition"
	"github.com/weftgrid/weft/scheduler"
)

func TestCommandVeto(t *testing.T) {
	ann := &scheduler.Announcement{Name: "web", RecipeCID: "bafy", Instance: "ab"}
	ctx := context.Background()
	allow, _, err := commandVeto{command: `grep -q '"name":"web"'`, timeout: 5 * time.Second}.Veto(ctx, ann)
	if err != nil || !allow {
		t.Fatalf("hook reading the announcement on stdin: allow %v, %v", allow, err)
	}
	allow, reason, err := commandVeto{command: "echo 'no web here'; exit 3", timeout: 5 * time.Second}.Veto(ctx, ann)
	if err != nil || allow || reason != "no web here" {
		t.Fatalf("vetoing hook: allow %v reason %q err %v", allow, reason, err)
	}
	allow, reason, _ = commandVeto{command: "sleep 5", timeout: 100 * time.Millisecond}.Veto(ctx, ann)
	if allow || !strings.Contains(reason, "timed out") {
		t.Fatalf("slow hook: allow %v reason %q", allow, reason)
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
	r := &partitionRunner{parts: parts, results: map[string]string{}}
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

// listParts is a partition runtime with a list, recording applies.
type listParts struct {
	fakeParts
	list    []partition.InstanceStatus
	applied []partition.InstanceSpec
}

func (l *listParts) List() []partition.InstanceStatus { return l.list }
func (l *listParts) Apply(s partition.InstanceSpec) error {
	l.applied = append(l.applied, s)
	return nil
}

func TestFenceStale(t *testing.T) {
	p := &listParts{list: []partition.InstanceStatus{
		{ID: "stale", Epoch: 1, State: partition.StateStarted},
		{ID: "current", Epoch: 2, State: partition.StateStarted},
		{ID: "hosted", Epoch: 1, State: partition.StateStarted},
		{ID: "unknown", Epoch: 1, State: partition.StateStarted},
		{ID: "gone", Epoch: 1, State: partition.StateDestroyed},
	}}
	latest := map[string]uint64{"stale": 2, "current": 2, "hosted": 5, "gone": 3}
	got := fenceStale(p, map[string]bool{"hosted": true}, func(id string) (uint64, bool) { e, ok := latest[id]; return e, ok })
	if len(got) != 1 || got[0] != "stale" {
		t.Fatalf("fenced %v, want [stale]", got)
	}
	if len(p.applied) != 1 || p.applied[0].State != partition.StateDestroyed || p.applied[0].Epoch != 1 {
		t.Fatalf("applied %+v", p.applied)
	}
}
