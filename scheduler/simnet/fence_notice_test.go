package simnet_test

import (
	"context"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/weftgrid/weft/scheduler"
	"github.com/weftgrid/weft/scheduler/simnet"
)

// serving returns the nodes up on the network whose runner has the instance started.
func servingUp(net *simnet.Network, id scheduler.InstanceID) []peer.ID {
	var out []peer.ID
	for _, p := range net.Serving(id) {
		if net.Node(p).IsUp() {
			out = append(out, p)
		}
	}
	return out
}

// A guardian re-places the instance while the requester and the old host
// are cut off together; the new host then dies for good (machine lost)
// before the grid heals. After the heal the old host is fenced by the
// guardian's contract, but the requester only knows the old contract,
// whose host is alive: unless it learns the contract that fenced that copy
// (whose host is dead), the instance runs nowhere, forever.
func TestFencedByDeadHostsContractReplacedAgain(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net, nodes := grid(t, 6, nil)
		req := nodes[0]
		v := placed(t, req.Market, spec("web", "guardians=2", "grace=1s"))
		id := v.InstanceID
		h1 := mustDecode(t, v.Node)
		if h1 == req.ID {
			t.Fatal("placed on the requester; the test wants another host")
		}
		var rest []peer.ID
		for _, n := range nodes {
			if n.ID != req.ID && n.ID != h1 {
				rest = append(rest, n.ID)
			}
		}
		net.Partition([]peer.ID{req.ID, h1}, rest)
		waitFor(t, "a guardian re-placed the instance on the other side", time.Minute, func() bool {
			return len(net.Serving(id)) == 2
		})
		var h2 peer.ID
		for _, p := range net.Serving(id) {
			if p != h1 {
				h2 = p
			}
		}
		if slices.Contains(v.Guardians, h2.String()) {
			t.Fatalf("the guardian placed it on itself (%s); the test wants another host", h2)
		}
		// The new host dies for good, its machine with it.
		dead := net.Node(h2)
		dead.Crash()
		if err := dead.Runner.Apply(context.Background(), scheduler.InstanceSpec{Instance: id, State: scheduler.StateDestroyed}); err != nil {
			t.Fatal(err)
		}
		net.Heal()
		waitFor(t, "the old host's copy fenced", time.Minute, func() bool {
			return !slices.Contains(net.Serving(id), h1)
		})
		waitFor(t, "one live host serves the instance and the requester names it", time.Minute, func() bool {
			s := servingUp(net, id)
			if len(s) != 1 {
				return false
			}
			x, err := req.Market.Instance("web")
			return err == nil && x.Node == s[0].String() && x.State == scheduler.StateStarted
		})
	})
}

// The old host is cut off together with the instance's guardians for
// longer than GuardianRefresh: the requester re-places the instance, then
// names new guardians. The requester then goes away for good and the grid
// heals. The old host reports only to the old guardians, which never
// learned the new contract, and the new host reports only to the new
// ones: unless one side learns the other's contract, both copies run
// (and bill) forever.
func TestOldGuardiansLearnNewContractAfterRefresh(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net, nodes := grid(t, 8, nil)
		req := nodes[0]
		v := placed(t, req.Market, spec("web", "guardians=2", "grace=1s"))
		id := v.InstanceID
		h1 := mustDecode(t, v.Node)
		if h1 == req.ID {
			t.Fatal("placed on the requester; the test wants another host")
		}
		cut := []peer.ID{h1}
		for _, g := range v.Guardians {
			if p := mustDecode(t, g); p != h1 {
				cut = append(cut, p)
			}
		}
		var rest []peer.ID
		for _, n := range nodes {
			if !slices.Contains(cut, n.ID) {
				rest = append(rest, n.ID)
			}
		}
		net.Partition(cut, rest)
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
		defer cancel()
		v2, err := req.Market.Wait(ctx, "web", func(x scheduler.InstanceView) bool {
			if x.Epoch < 2 || x.State != scheduler.StateStarted || x.Node == req.ID.String() {
				return false
			}
			for _, g := range x.Guardians {
				if slices.Contains(cut, mustDecode(t, g)) {
					return false
				}
			}
			return true
		})
		if err != nil {
			t.Fatalf("not re-placed away from the requester with fresh guardians: %v (%+v)", err, v2)
		}
		req.Down() // for good
		net.Heal()
		one := func() bool { return len(servingUp(net, id)) == 1 }
		waitFor(t, "one live host serves the instance", time.Minute, one)
		time.Sleep(10 * time.Second)
		if !one() {
			t.Fatalf("drifted to %v", servingUp(net, id))
		}
	})
}
