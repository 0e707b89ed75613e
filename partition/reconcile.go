package partition

import "sort"

// Desired is the reconciler's view of one requested instance.
type Desired struct {
	ID    string
	State State
	// Gen identifies what should run (recipe, type, params): when it
	// differs from the running Gen, the instance is restarted in place.
	Gen string
}

// Actual is the reconciler's view of one instance on the node.
type Actual struct {
	ID string
	// Partition is the allocated partition, -1 when none.
	Partition int
	Phase     Phase
	// Gen is what runs (or last ran).
	Gen string
	// Busy is true while an action on the instance is in progress.
	Busy bool
}

// ActionKind is what the loop must do to one instance.
type ActionKind int

// Actions.
const (
	// ActStart allocates a partition if needed, installs and starts.
	ActStart ActionKind = iota + 1
	// ActRestart stops and starts again with the new spec (same partition).
	ActRestart
	// ActStop stops every process; the partition is kept.
	ActStop
	// ActDestroy stops everything, wipes the partition and frees it.
	ActDestroy
	// ActForget drops an instance that has nothing left on the node.
	ActForget
	// ActWait reports that the instance cannot start yet (Reason says why).
	ActWait
)

// String returns the action's name.
func (k ActionKind) String() string {
	switch k {
	case ActStart:
		return "start"
	case ActRestart:
		return "restart"
	case ActStop:
		return "stop"
	case ActDestroy:
		return "destroy"
	case ActForget:
		return "forget"
	case ActWait:
		return "wait"
	}
	return "unknown"
}

// Action is one step for one instance.
type Action struct {
	Kind   ActionKind
	ID     string
	Reason string
}

// active reports whether processes may be running in this phase.
func active(p Phase) bool {
	return p == PhaseInstalling || p == PhaseStarting || p == PhaseRunning
}

// Reconcile compares desired and actual state and returns the actions that
// bring the node closer to desired, in a stable order (by instance ID,
// destroys first so that their partitions free up for starts). free is the
// number of unallocated partitions. It is pure: the same inputs always give
// the same actions.
func Reconcile(desired []Desired, actual []Actual, free int) []Action {
	act := make(map[string]Actual, len(actual))
	for _, a := range actual {
		act[a.ID] = a
	}
	want := make(map[string]Desired, len(desired))
	for _, d := range desired {
		want[d.ID] = d
	}
	var destroys, others []Action
	as := append([]Actual(nil), actual...)
	sort.Slice(as, func(i, j int) bool { return as[i].ID < as[j].ID })
	// Instances on the node that nobody wants any more.
	for _, a := range as {
		if _, ok := want[a.ID]; ok || a.Busy {
			continue
		}
		if a.Partition >= 0 {
			destroys = append(destroys, Action{Kind: ActDestroy, ID: a.ID, Reason: "not desired"})
		} else {
			others = append(others, Action{Kind: ActForget, ID: a.ID, Reason: "not desired"})
		}
	}
	ds := append([]Desired(nil), desired...)
	sort.Slice(ds, func(i, j int) bool { return ds[i].ID < ds[j].ID })
	// Destroys first: they give partitions back before starts are counted.
	for _, d := range ds {
		a, ok := act[d.ID]
		if d.State != StateDestroyed || (ok && a.Busy) {
			continue
		}
		switch {
		case ok && a.Partition >= 0:
			destroys = append(destroys, Action{Kind: ActDestroy, ID: d.ID, Reason: "requested destroyed"})
		default:
			others = append(others, Action{Kind: ActForget, ID: d.ID, Reason: "destroyed"})
		}
	}
	for _, d := range ds {
		a, ok := act[d.ID]
		if ok && a.Busy {
			continue
		}
		switch d.State {
		case StateStarted:
			switch {
			case !ok || a.Partition < 0:
				if free > 0 {
					free--
					others = append(others, Action{Kind: ActStart, ID: d.ID, Reason: "requested started"})
				} else {
					others = append(others, Action{Kind: ActWait, ID: d.ID, Reason: "no free partition"})
				}
			case a.Gen != d.Gen && (active(a.Phase) || a.Phase == PhaseFailed || a.Phase == PhaseCompleted):
				others = append(others, Action{Kind: ActRestart, ID: d.ID, Reason: "spec changed"})
			case a.Phase == PhaseStopped || a.Phase == PhasePending:
				others = append(others, Action{Kind: ActStart, ID: d.ID, Reason: "requested started"})
			}
		case StateStopped:
			// Pending too: an instance stopped before it ever started (or
			// while it waited for a partition) is stopped, not pending.
			if ok && (active(a.Phase) || a.Phase == PhasePending) {
				others = append(others, Action{Kind: ActStop, ID: d.ID, Reason: "requested stopped"})
			}
		}
	}
	return append(destroys, others...)
}
