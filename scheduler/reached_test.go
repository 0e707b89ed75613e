package scheduler

import (
	"errors"
	"testing"
)

func TestReachedWaitsForTheAppliedGeneration(t *testing.T) {
	cases := []struct {
		name string
		v    InstanceView
		want bool
		err  bool
	}{
		{"started, status of the latest request", InstanceView{Node: "h", State: StateStarted, RequestedState: StateStarted, Generation: 5, StatusGeneration: 5}, true, false},
		{"started, status of an earlier request", InstanceView{Node: "h", State: StateStarted, RequestedState: StateStarted, Generation: 5, StatusGeneration: 4}, false, false},
		{"stopped while the host still applies", InstanceView{Node: "h", State: StateStopped, RequestedState: StateStopped, Generation: 7, StatusGeneration: 6}, false, false},
		{"batch done", InstanceView{Node: "h", State: StateDone, RequestedState: StateStarted, Generation: 2, StatusGeneration: 2}, true, false},
		{"destroyed, no host", InstanceView{State: StateDestroyed, RequestedState: StateDestroyed, Generation: 3}, true, false},
		{"destroyed on its last host", InstanceView{Node: "h", State: StateDestroyed, RequestedState: StateDestroyed, Generation: 3, StatusGeneration: 2}, true, false},
		{"failed", InstanceView{State: StateFailed, RequestedState: StateStarted, Generation: 1, Reason: "no node"}, true, true},
		{"pending", InstanceView{State: StatePending, RequestedState: StateStarted, Generation: 1}, false, false},
	}
	for _, c := range cases {
		got, err := Reached(c.v)
		if got != c.want || (err != nil) != c.err {
			t.Errorf("%s: Reached = %v, %v; want %v, error %v", c.name, got, err, c.want, c.err)
		}
		if c.err && !errors.Is(err, ErrUnplaceable) {
			t.Errorf("%s: error %v is not ErrUnplaceable", c.name, err)
		}
	}
}
