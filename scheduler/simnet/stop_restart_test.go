package simnet_test

import (
	"context"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/weftgrid/weft/scheduler"
	"github.com/weftgrid/weft/scheduler/simnet"
)

// A stopped instance started again runs under a new epoch (the stop ended
// its contract's billing), on the node that holds its stopped copy even
// when that node has no other partition free; with that node gone, it is
// placed elsewhere.
func TestRestartAfterStopIsANewEpochOnTheSameHost(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net, nodes := grid(t, 4, func(i int) simnet.NodeOptions { return simnet.NodeOptions{Partitions: 1} })
		m := nodes[0].Market
		v := placed(t, m, spec("svc"))
		s := spec("svc")
		s.State = scheduler.StateStopped
		if x := placed(t, m, s); x.State != scheduler.StateStopped || x.Epoch != v.Epoch || x.Node != v.Node {
			t.Fatalf("stopped %+v, placed %+v", x, v)
		}
		s.State = scheduler.StateStarted
		x := placed(t, m, s)
		if x.State != scheduler.StateStarted || x.Epoch <= v.Epoch || x.Node != v.Node {
			t.Fatalf("started again: %+v, want a newer epoch than %d on %s", x, v.Epoch, v.Node)
		}
		if srv := net.Serving(x.InstanceID); len(srv) != 1 || srv[0].String() != v.Node {
			t.Fatalf("served by %v", srv)
		}

		// Its host gone while it is stopped: started again elsewhere.
		s.State = scheduler.StateStopped
		placed(t, m, s)
		var host *simnet.Node
		for _, n := range nodes {
			if n.ID.String() == x.Node {
				host = n
			}
		}
		if host == nil || host == nodes[0] {
			t.Skip("placed on the requester itself")
		}
		host.Down()
		s.State = scheduler.StateStarted
		y := placed(t, m, s)
		if y.State != scheduler.StateStarted || y.Epoch <= x.Epoch || y.Node == x.Node {
			t.Fatalf("started again with its host down: %+v (was %+v)", y, x)
		}
	})
}

// refuser is a veto hook that refuses every auction once set.
type refuser struct{ on atomic.Bool }

func (r *refuser) Veto(context.Context, *scheduler.Announcement) (bool, string, error) {
	if r.on.Load() {
		return false, "refusing for the test", nil
	}
	return true, "", nil
}

// When the node holding the stopped copy is alive but does not take the
// restart, the next auction, at once, is open to every node: the request
// to start again is not answered with a failure.
func TestRestartAfterStopFallsBackToAnyNode(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		vetoes := make([]*refuser, 4)
		_, nodes := grid(t, 4, func(i int) simnet.NodeOptions {
			vetoes[i] = &refuser{}
			return simnet.NodeOptions{Veto: vetoes[i]}
		})
		m := nodes[0].Market
		v := placed(t, m, spec("svc"))
		s := spec("svc")
		s.State = scheduler.StateStopped
		placed(t, m, s)
		for i, n := range nodes {
			if n.ID.String() == v.Node {
				vetoes[i].on.Store(true)
			}
		}
		s.State = scheduler.StateStarted
		x := placed(t, m, s)
		if x.State != scheduler.StateStarted || x.Epoch <= v.Epoch || x.Node == v.Node {
			t.Fatalf("started again with its host refusing: %+v (was on %s at epoch %d)", x, v.Node, v.Epoch)
		}
	})
}

// A host stops a copy whose requester ended its contract's billing
// (StopUnpaid): the requester sees it stopped; another epoch, a copy
// already stopped or an instance it does not host is left alone.
func TestStopUnpaid(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, nodes := grid(t, 3, nil)
		m := nodes[0].Market
		v := placed(t, m, spec("svc"))
		var host *simnet.Node
		for _, n := range nodes {
			if n.ID.String() == v.Node {
				host = n
			}
		}
		ctx := t.Context()
		if ok, err := host.Market.StopUnpaid(ctx, v.InstanceID, v.Epoch+1); ok || err != nil {
			t.Fatalf("another epoch stopped: %v %v", ok, err)
		}
		if ok, err := host.Market.StopUnpaid(ctx, "not-hosted", v.Epoch); ok || err != nil {
			t.Fatalf("an instance not hosted stopped: %v %v", ok, err)
		}
		if ok, err := host.Market.StopUnpaid(ctx, v.InstanceID, v.Epoch); !ok || err != nil {
			t.Fatalf("unpaid copy not stopped: %v %v", ok, err)
		}
		waitFor(t, "the requester to see the copy stopped", 30*time.Second, func() bool {
			x, _ := m.Instance("svc")
			rs, _ := host.Runner.Status(v.InstanceID)
			return x.State == scheduler.StateStopped && rs.State == scheduler.StateStopped
		})
		if ok, _ := host.Market.StopUnpaid(ctx, v.InstanceID, v.Epoch); ok {
			t.Fatal("a stopped copy stopped again")
		}
	})
}
