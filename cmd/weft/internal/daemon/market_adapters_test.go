package daemon

import (
	"testing"

	"github.com/weftgrid/weft/partition"
)

// listParts is a partition runtime with a list, recording applies.
type listParts struct {
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
