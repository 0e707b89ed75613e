package scheduler

import "testing"

// A host carrying out a stop or a destruction its requester asked for
// (processes exiting, the copy pending its destruction) is healthy in the
// requester's reading: the slice the stop falls in is no fault of the
// host's. A failure stays a failure, and a started instance that fails
// while it should run stays unhealthy.
func TestStatusHealthyWhileStopping(t *testing.T) {
	for _, c := range []struct {
		name    string
		asked   State
		st      Status
		healthy bool
	}{
		{"running", StateStarted, Status{State: StateStarted}, true},
		{"failing while asked to run", StateStarted, Status{State: StateStarted, Health: HealthFailing}, false},
		{"pending while asked to run", StateStarted, Status{State: StatePending}, false},
		{"processes exiting on a stop", StateStopped, Status{State: StateStarted, Health: HealthFailing, LastExit: "exit status 0"}, true},
		{"stopped as asked", StateStopped, Status{State: StateStopped}, true},
		{"destroying", StateDestroyed, Status{State: StatePending, Reason: "destroying"}, true},
		{"failed, then asked to stop", StateStopped, Status{State: StateFailed, Reason: "exit status 3"}, false},
		{"stopped when asked to run", StateStarted, Status{State: StateStopped}, false},
	} {
		st := c.st
		if ok, why := statusHealthy(&Request{Name: "web", State: c.asked}, &st); ok != c.healthy {
			t.Errorf("%s: healthy %v (%q), want %v", c.name, ok, why, c.healthy)
		}
	}
}
