package settle

import (
	"fmt"
	"time"

	"github.com/weftgrid/weft/ledger"
	"github.com/weftgrid/weft/scheduler"
)

// StopAllowance is how long a requester allows the host of an instance it
// asked to stop (or destroy) to carry the stop out: the request reaching
// the host, its processes' stop grace, the host's end entry. The
// requester's own end of the contract's billable span is the request's
// time plus StopAllowance; the host's end, at the moment it stopped the
// instance, comes first when the host is honest and reachable. So a host
// bills at most the slices that began before StopAllowance had passed,
// whatever it claims.
const StopAllowance = 15 * time.Second

// StopEnd is the end of billing a requester writes for an instance it asked
// to stop or destroy: the contract of Instance at Epoch ends at At.
type StopEnd struct {
	Instance string
	Epoch    uint64
	At       time.Time
	// State is ledger.EndStopped or ledger.EndDestroyed.
	State  string
	Reason string
}

// StopEnds returns the ends of billing the requester of views owes: one per
// instance of its own (Mine) placed under a contract (Epoch > 0) that it
// asked to stop or destroy, at the request's time plus StopAllowance. An
// instance asked to start again is placed under a new epoch (its stopped
// contract stays ended) and owes none.
func StopEnds(views []scheduler.InstanceView) []StopEnd {
	var out []StopEnd
	for _, v := range views {
		if !v.Mine || v.Epoch == 0 || v.RequestedAt.IsZero() {
			continue
		}
		var state string
		switch v.RequestedState {
		case scheduler.StateStopped:
			state = ledger.EndStopped
		case scheduler.StateDestroyed:
			state = ledger.EndDestroyed
		default:
			continue
		}
		out = append(out, StopEnd{
			Instance: string(v.InstanceID), Epoch: v.Epoch, At: v.RequestedAt.Add(StopAllowance), State: state,
			Reason: fmt.Sprintf("%s as its requester asked at %s (billing ends when its host stops it, at the latest %s later)",
				state, v.RequestedAt.UTC().Format(time.RFC3339Nano), StopAllowance),
		})
	}
	return out
}

// afterStop reports whether receipt r bills a slice that began after its
// requester asked for the instance (view, at the receipt's epoch) to stop
// or be destroyed, allowing StopAllowance; reason says so. It is the
// requester's own check, which holds before its end entry is in the ledger.
func afterStop(view *scheduler.InstanceView, r ledger.Receipt) (bool, string) {
	if view == nil || view.Epoch != r.Epoch || view.RequestedAt.IsZero() {
		return false, ""
	}
	if view.RequestedState != scheduler.StateStopped && view.RequestedState != scheduler.StateDestroyed {
		return false, ""
	}
	end := view.RequestedAt.Add(StopAllowance)
	if r.FromNanos < end.UnixNano() {
		return false, ""
	}
	return true, fmt.Sprintf("after_stop: slice %d begins at %s, after instance %s was asked to be %s at %s (allowing %s for its host to stop it)",
		r.Slice, time.Unix(0, r.FromNanos).UTC().Format(time.RFC3339Nano), view.Name, view.RequestedState,
		view.RequestedAt.UTC().Format(time.RFC3339Nano), StopAllowance)
}
