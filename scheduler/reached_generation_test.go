package scheduler

import (
	"errors"
	"testing"
)

// A host's failed status for an earlier generation is not the outcome of
// the latest request: an in-place update (new params) may fix it, and
// --wait must wait for the host's status of that update.
func TestReachedIgnoresAFailureOfAnEarlierGeneration(t *testing.T) {
	v := InstanceView{Node: "h", State: StateFailed, RequestedState: StateStarted, Generation: 9, StatusGeneration: 8, Reason: "bad port"}
	if ok, err := Reached(v); ok || err != nil {
		t.Fatalf("failed status of generation 8, request generation 9: Reached = %v, %v; want false, nil", ok, err)
	}
	v.StatusGeneration = 9
	if ok, err := Reached(v); !ok || !errors.Is(err, ErrUnplaceable) {
		t.Fatalf("failed status of the latest generation: Reached = %v, %v", ok, err)
	}
}

// anti_affinity_scope names a label key as the label SLA keys do; node
// labels carry custom keys without "label.", so "label.building" kept as is
// matched no node and anti-affinity silently did nothing.
func TestApplySLAAntiAffinityScopeLabelPrefix(t *testing.T) {
	var s RequestSpec
	if err := ApplySLA(&s, []string{"anti_affinity=set", "anti_affinity_scope=label.building"}); err != nil {
		t.Fatal(err)
	}
	if s.Constraints.AntiAffinityScope != "building" {
		t.Fatalf("scope %q, want building", s.Constraints.AntiAffinityScope)
	}
	f := Filter{ExcludeLabel: s.Constraints.AntiAffinityScope, ExcludeValues: []string{"b1"}, ExcludeWhy: "anti_affinity=set"}
	if code, _ := f.CheckNode("n", map[string]string{"building": "b1"}); code != DeclineExcluded {
		t.Fatalf("a node in building b1 is not excluded (code %v)", code)
	}
	if err := ApplySLA(&RequestSpec{}, []string{"anti_affinity_scope=label."}); !errors.Is(err, ErrBadConstraint) {
		t.Fatalf("anti_affinity_scope=label.: %v", err)
	}
}

// A signed amount is not a number of credits: "-0.5" parsed as 0.5.
func TestApplySLAMaxPriceRejectsSigns(t *testing.T) {
	for _, bad := range []string{"max_price=-0.5", "max_price=-0", "max_price=1.+5"} {
		var s RequestSpec
		if err := ApplySLA(&s, []string{bad}); !errors.Is(err, ErrBadConstraint) {
			t.Errorf("%q: accepted as %s (err %v)", bad, s.Constraints.MaxPrice, err)
		}
	}
	var s RequestSpec
	if err := ApplySLA(&s, []string{"max_price=.5"}); err != nil || s.Constraints.MaxPrice != 500000 {
		t.Fatalf("max_price=.5: %v %d", err, s.Constraints.MaxPrice)
	}
}
