package jobs

import (
	"context"
	"testing"

	"github.com/weftgrid/weft/scheduler"
)

// fakeMarket keeps instance views by name; a request sets the requested
// state and bumps the generation.
type fakeMarket struct {
	views map[string]scheduler.InstanceView
}

func (f *fakeMarket) Instance(name string) (scheduler.InstanceView, error) {
	v, ok := f.views[name]
	if !ok {
		return v, scheduler.ErrNotFound
	}
	return v, nil
}

func (f *fakeMarket) Instances() []scheduler.InstanceView {
	var out []scheduler.InstanceView
	for _, v := range f.views {
		out = append(out, v)
	}
	return out
}

func (f *fakeMarket) Purge(_ context.Context, name string) error {
	delete(f.views, name)
	return nil
}

func (f *fakeMarket) Request(_ context.Context, spec scheduler.RequestSpec) (scheduler.InstanceView, error) {
	v := f.views[spec.Name]
	v.Name, v.RecipeCID, v.Batch, v.RequestedState = spec.Name, spec.RecipeCID, true, spec.State
	v.Generation++
	f.views[spec.Name] = v
	return v, nil
}

func TestNameIsWhatTheJobRuns(t *testing.T) {
	a := Name("bafy", "job", map[string]string{"a": "1", "b": "2"})
	if a != Name("bafy", "job", map[string]string{"b": "2", "a": "1"}) {
		t.Fatal("the same job named twice differently")
	}
	if a == Name("bafy", "job", map[string]string{"a": "1", "b": "3"}) || a == Name("bafy", "", map[string]string{"a": "1", "b": "2"}) {
		t.Fatal("different jobs with one name")
	}
}

// A finished job is released (destroyed, its result kept) and shows its
// result, also after the registry is reopened from its directory.
func TestReleasedJobKeepsItsResultAcrossReopen(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	m := &fakeMarket{views: map[string]scheduler.InstanceView{}}
	js, err := Open(dir, m, nil)
	if err != nil {
		t.Fatal(err)
	}
	spec := scheduler.RequestSpec{Name: "report", RecipeCID: "bafyrecipe", State: scheduler.StateStarted, Batch: true}
	if j, err := js.Run(ctx, spec, true); err != nil || j.State == "done" {
		t.Fatalf("run: %+v %v", j, err)
	}
	done := m.views["report"]
	done.State, done.Result, done.Node, done.StatusGeneration = scheduler.StateDone, "bafyresult", "host", done.Generation
	m.views["report"] = done
	js.Release(ctx, done)
	if v := m.views["report"]; v.RequestedState != scheduler.StateDestroyed {
		t.Fatalf("the finished job was not released: %+v", v)
	}
	if j := js.View(m.views["report"]); j.State != "done" || j.Result != "bafyresult" {
		t.Fatalf("released job shows %+v", j)
	}
	again, err := Open(dir, m, nil)
	if err != nil {
		t.Fatal(err)
	}
	if j := again.View(m.views["report"]); j.State != "done" || j.Result != "bafyresult" {
		t.Fatalf("after reopening: %+v", j)
	}
	// The same named job again is answered with its result; another run
	// under the same name is requested.
	if j, err := again.Run(ctx, spec, true); err != nil || j.Result != "bafyresult" {
		t.Fatalf("same job again: %+v %v", j, err)
	}
	other := spec
	other.Params = map[string]string{"month": "feb"}
	gen := m.views["report"].Generation
	if _, err := again.Run(ctx, other, true); err != nil || m.views["report"].Generation != gen+1 {
		t.Fatalf("another run was not requested: %v", err)
	}
	// An instance that is not a job of this registry is never released.
	m.views["web"] = scheduler.InstanceView{Name: "web", State: scheduler.StateDone, Result: "x"}
	again.Release(ctx, m.views["web"])
	if m.views["web"].RequestedState == scheduler.StateDestroyed {
		t.Fatal("released an instance that is not a job")
	}
}
