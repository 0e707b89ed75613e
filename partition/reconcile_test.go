package partition

import (
	"fmt"
	"slices"
	"testing"

	"pgregory.net/rapid"
)

func TestReconcileTable(t *testing.T) {
	cases := []struct {
		name    string
		desired []Desired
		actual  []Actual
		free    int
		want    []Action
	}{
		{"new instance starts", []Desired{{ID: "a", State: StateStarted, Gen: "g"}}, nil, 1,
			[]Action{{ActStart, "a", "requested started"}}},
		{"no partition: wait", []Desired{{ID: "a", State: StateStarted, Gen: "g"}}, nil, 0,
			[]Action{{ActWait, "a", "no free partition"}}},
		{"running and current: nothing", []Desired{{ID: "a", State: StateStarted, Gen: "g"}},
			[]Actual{{ID: "a", Partition: 0, Phase: PhaseRunning, Gen: "g"}}, 0, nil},
		{"params changed: restart", []Desired{{ID: "a", State: StateStarted, Gen: "g2"}},
			[]Actual{{ID: "a", Partition: 0, Phase: PhaseRunning, Gen: "g"}}, 0,
			[]Action{{ActRestart, "a", "spec changed"}}},
		{"stopped → started", []Desired{{ID: "a", State: StateStarted, Gen: "g"}},
			[]Actual{{ID: "a", Partition: 3, Phase: PhaseStopped, Gen: "g"}}, 0,
			[]Action{{ActStart, "a", "requested started"}}},
		{"failed and current: left alone", []Desired{{ID: "a", State: StateStarted, Gen: "g"}},
			[]Actual{{ID: "a", Partition: 3, Phase: PhaseFailed, Gen: "g"}}, 5, nil},
		{"completed batch stays completed", []Desired{{ID: "a", State: StateStarted, Gen: "g"}},
			[]Actual{{ID: "a", Partition: 3, Phase: PhaseCompleted, Gen: "g"}}, 5, nil},
		{"stop", []Desired{{ID: "a", State: StateStopped, Gen: "g"}},
			[]Actual{{ID: "a", Partition: 0, Phase: PhaseStarting, Gen: "g"}}, 0,
			[]Action{{ActStop, "a", "requested stopped"}}},
		{"stopped before it started", []Desired{{ID: "a", State: StateStopped, Gen: "g"}},
			[]Actual{{ID: "a", Partition: -1, Phase: PhasePending}}, 0,
			[]Action{{ActStop, "a", "requested stopped"}}},
		{"stopped stays", []Desired{{ID: "a", State: StateStopped}},
			[]Actual{{ID: "a", Partition: 0, Phase: PhaseStopped}}, 0, nil},
		{"destroy", []Desired{{ID: "a", State: StateDestroyed}},
			[]Actual{{ID: "a", Partition: 0, Phase: PhaseRunning}}, 0,
			[]Action{{ActDestroy, "a", "requested destroyed"}}},
		{"destroy without partition: forget", []Desired{{ID: "a", State: StateDestroyed}},
			[]Actual{{ID: "a", Partition: -1, Phase: PhasePending}}, 0,
			[]Action{{ActForget, "a", "destroyed"}}},
		{"orphan destroyed", nil, []Actual{{ID: "z", Partition: 1, Phase: PhaseRunning}}, 0,
			[]Action{{ActDestroy, "z", "not desired"}}},
		{"busy untouched", []Desired{{ID: "a", State: StateDestroyed}},
			[]Actual{{ID: "a", Partition: 0, Phase: PhaseRunning, Busy: true}}, 0, nil},
		{"free counted across starts", []Desired{
			{ID: "a", State: StateStarted}, {ID: "b", State: StateStarted}, {ID: "c", State: StateStarted}}, nil, 2,
			[]Action{{ActStart, "a", "requested started"}, {ActStart, "b", "requested started"}, {ActWait, "c", "no free partition"}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := Reconcile(c.desired, c.actual, c.free)
			if !slices.Equal(got, c.want) {
				t.Errorf("Reconcile = %v, want %v", got, c.want)
			}
		})
	}
}

// Properties: never more starts than free partitions; at most one action per
// instance; busy instances are never touched; the result does not depend on
// input order.
func TestReconcileProperties(t *testing.T) {
	phases := []Phase{PhasePending, PhaseInstalling, PhaseStarting, PhaseRunning, PhaseFailed, PhaseCompleted, PhaseStopped}
	states := []State{StateStarted, StateStopped, StateDestroyed}
	rapid.Check(t, func(t *rapid.T) {
		n := rapid.IntRange(0, 12).Draw(t, "n")
		var des []Desired
		var act []Actual
		for i := 0; i < n; i++ {
			id := fmt.Sprintf("i%02d", i)
			if rapid.Bool().Draw(t, "hasDesired") {
				des = append(des, Desired{ID: id, State: rapid.SampledFrom(states).Draw(t, "state"),
					Gen: rapid.SampledFrom([]string{"g1", "g2"}).Draw(t, "gen")})
			}
			if rapid.Bool().Draw(t, "hasActual") {
				act = append(act, Actual{ID: id, Partition: rapid.IntRange(-1, 3).Draw(t, "part"),
					Phase: rapid.SampledFrom(phases).Draw(t, "phase"),
					Gen:   rapid.SampledFrom([]string{"g1", "g2"}).Draw(t, "agen"),
					Busy:  rapid.Bool().Draw(t, "busy")})
			}
		}
		free := rapid.IntRange(0, 4).Draw(t, "free")
		got := Reconcile(des, act, free)
		starts := 0
		seen := map[string]bool{}
		busy := map[string]bool{}
		for _, a := range act {
			busy[a.ID] = a.Busy
		}
		for _, a := range got {
			if seen[a.ID] {
				t.Fatalf("two actions for %s: %v", a.ID, got)
			}
			seen[a.ID] = true
			if busy[a.ID] {
				t.Fatalf("busy instance %s got %v", a.ID, a)
			}
			if a.Kind == ActStart {
				starts++
			}
		}
		newStarts := 0
		for _, a := range got {
			if a.Kind != ActStart {
				continue
			}
			for _, x := range act {
				if x.ID == a.ID && x.Partition >= 0 {
					goto allocated
				}
			}
			newStarts++
		allocated:
		}
		if newStarts > free {
			t.Fatalf("%d allocations with %d free", newStarts, free)
		}
		slices.Reverse(des)
		slices.Reverse(act)
		if again := Reconcile(des, act, free); !slices.Equal(again, got) {
			t.Fatalf("order dependent: %v vs %v", got, again)
		}
	})
}
