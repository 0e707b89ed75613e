package settle

import (
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/weftgrid/weft/ledger"
	"github.com/weftgrid/weft/scheduler"
)

// A requester owes an end of billing, StopAllowance after it asked, for
// each of its own placed instances it asked to stop or destroy, and none
// for others' (guarded), unplaced or started ones.
func TestStopEnds(t *testing.T) {
	at := time.Unix(1_700_000_000, 0)
	base := scheduler.InstanceView{InstanceID: "i", Name: "web", Epoch: 3, Mine: true, RequestedAt: at}
	with := func(f func(*scheduler.InstanceView)) scheduler.InstanceView { v := base; f(&v); return v }
	views := []scheduler.InstanceView{
		with(func(v *scheduler.InstanceView) { v.InstanceID, v.RequestedState = "stopped", scheduler.StateStopped }),
		with(func(v *scheduler.InstanceView) {
			v.InstanceID, v.RequestedState = "destroyed", scheduler.StateDestroyed
		}),
		with(func(v *scheduler.InstanceView) { v.InstanceID, v.RequestedState = "started", scheduler.StateStarted }),
		with(func(v *scheduler.InstanceView) {
			v.InstanceID, v.RequestedState, v.Mine = "guarded", scheduler.StateStopped, false
		}),
		with(func(v *scheduler.InstanceView) {
			v.InstanceID, v.RequestedState, v.Epoch = "unplaced", scheduler.StateStopped, 0
		}),
	}
	got := StopEnds(views)
	if len(got) != 2 {
		t.Fatalf("ends %+v, want the stopped and the destroyed instance's", got)
	}
	for _, e := range got {
		if e.Epoch != 3 || !e.At.Equal(at.Add(StopAllowance)) || e.Instance != e.State || !strings.Contains(e.Reason, "as its requester asked") {
			t.Errorf("end %+v", e)
		}
	}
}

// The requester disputes a receipt for a slice that began after it asked
// for the stop (allowing StopAllowance) even before any end of billing is
// in the ledger and while its view says the instance is stopped as asked;
// the slice the stop fell in, and the receipts of a newer epoch, are not
// disputed for it.
func TestReceiptAfterTheRequestedStopIsDisputed(t *testing.T) {
	prov := newParty(t).ledger.ID()
	stopAt := time.Unix(1_700_000_000, 0)
	view := scheduler.InstanceView{InstanceID: "i", Name: "web", Node: prov.String(), Epoch: 2, Mine: true,
		State: scheduler.StateStopped, RequestedState: scheduler.StateStopped, RequestedAt: stopAt}
	reach := Reach{Instances: func() []scheduler.InstanceView { return []scheduler.InstanceView{view} },
		Alive: func() map[peer.ID]bool { return map[peer.ID]bool{prov: true} }}
	slice := int64(10 * time.Second)
	receipt := func(epoch uint64, from time.Time) ledger.Receipt {
		return ledger.Receipt{InstanceID: "i", Epoch: epoch, Slice: 7, FromNanos: from.UnixNano(), ToNanos: from.UnixNano() + slice}
	}
	for _, c := range []struct {
		name string
		r    ledger.Receipt
		want ledger.Reach
	}{
		{"the stop's slice", receipt(2, stopAt.Add(-time.Second)), ledger.Reachable},
		{"within the allowance", receipt(2, stopAt.Add(StopAllowance-time.Nanosecond)), ledger.Reachable},
		{"after the allowance", receipt(2, stopAt.Add(StopAllowance)), ledger.Unreachable},
		{"an hour later", receipt(2, stopAt.Add(time.Hour)), ledger.Unreachable},
		{"an older epoch", receipt(1, stopAt.Add(time.Hour)), ledger.ReachUnknown},
	} {
		v, why := reach.Reachable(c.r, prov)
		if c.name == "an older epoch" {
			// The view is at a newer epoch: no verdict of its own on an
			// older contract (its span and fencing decide).
			if v == ledger.Unreachable && strings.Contains(why, "after_stop") {
				t.Errorf("%s: disputed for the stop of epoch 2: %q", c.name, why)
			}
			continue
		}
		if v != c.want {
			t.Errorf("%s: %s %q, want %s", c.name, v, why, c.want)
		}
		if v == ledger.Unreachable && !strings.Contains(why, "after_stop") {
			t.Errorf("%s: reason %q does not say why", c.name, why)
		}
	}
}
