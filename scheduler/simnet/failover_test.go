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

func TestHostKilledReplacedAndFencedOnReturn(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net, nodes := grid(t, 10, nil)
		req := nodes[0].Market
		s := spec("web", "grace=1s")
		v := placed(t, req, s)
		old := net.Node(peer.ID(mustDecode(t, v.Node)))
		if old == nodes[0] {
			t.Fatal("placed on the requester; the test wants another host")
		}
		oldURL := v.Connection["url"]
		old.Down()
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		defer cancel()
		v2, err := req.Wait(ctx, "web", func(v scheduler.InstanceView) bool {
			return v.Epoch == 2 && v.State == scheduler.StateStarted
		})
		if err != nil {
			t.Fatalf("not re-placed: %v (%+v)", err, v2)
		}
		if v2.Node == v.Node || v2.Connection["url"] == oldURL || v2.Connection["epoch"] != "2" {
			t.Fatalf("re-placed view %+v (old node %s url %s)", v2, v.Node, oldURL)
		}
		// The old host still runs its stale copy while it is away.
		if got := net.Serving(v.InstanceID); len(got) != 2 {
			t.Fatalf("serving %v; want the stale copy and the new one", got)
		}
		old.Up()
		waitFor(t, "stale copy fenced", 30*time.Second, func() bool {
			return len(net.Serving(v.InstanceID)) == 1
		})
		if got := net.Serving(v.InstanceID); got[0].String() != v2.Node {
			t.Fatalf("serving on %v, want %s", got, v2.Node)
		}
		if old.Market.Stats().Fenced != 1 {
			t.Fatalf("old host fenced %d copies", old.Market.Stats().Fenced)
		}
	})
}

func mustDecode(t *testing.T, s string) peer.ID {
	id, err := peer.Decode(s)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func TestRequesterOfflineGuardianReplaces(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net, nodes := grid(t, 10, nil)
		req := nodes[0]
		v := placed(t, req.Market, spec("web", "guardians=3"))
		host := net.Node(mustDecode(t, v.Node))
		if host == req {
			t.Fatal("placed on the requester")
		}
		if len(v.Guardians) != 3 {
			t.Fatalf("guardians %v", v.Guardians)
		}
		// Guardians learn the instance from the contract notice.
		for _, g := range v.Guardians {
			gn := net.Node(mustDecode(t, g))
			waitFor(t, "guardian knows the instance", 10*time.Second, func() bool {
				return slices.ContainsFunc(gn.Market.Instances(), func(x scheduler.InstanceView) bool { return x.InstanceID == v.InstanceID })
			})
		}
		req.Down()
		host.Down()
		waitFor(t, "guardian re-placed the instance", 30*time.Second, func() bool {
			s := net.Serving(v.InstanceID)
			return slices.ContainsFunc(s, func(id peer.ID) bool { return net.Node(id).IsUp() })
		})
		// The requester, cut off, may have re-placed it too (onto itself,
		// the only node it could see): once it is back, one copy wins and
		// the requester's view follows it.
		req.Up()
		host.Up()
		waitFor(t, "one copy", 30*time.Second, func() bool { return len(net.Serving(v.InstanceID)) == 1 })
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		defer cancel()
		v2, err := req.Market.Wait(ctx, "web", func(x scheduler.InstanceView) bool {
			s := net.Serving(v.InstanceID)
			return len(s) == 1 && x.Node == s[0].String() && x.State == scheduler.StateStarted
		})
		if err != nil || v2.Epoch < 2 || v2.Node == v.Node {
			t.Fatalf("requester's view after healing: %v %+v", err, v2)
		}
	})
}

func TestStateChangesAndDestroy(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net, nodes := grid(t, 5, nil)
		m := nodes[1].Market
		v := placed(t, m, spec("svc"))
		s := spec("svc")
		s.State = scheduler.StateStopped
		v2 := placed(t, m, s)
		if v2.State != scheduler.StateStopped || v2.Node != v.Node || v2.Generation <= v.Generation {
			t.Fatalf("stopped view %+v", v2)
		}
		s.State = scheduler.StateDestroyed
		v3 := placed(t, m, s)
		if v3.State != scheduler.StateDestroyed {
			t.Fatalf("destroyed view %+v", v3)
		}
		for _, n := range net.Nodes() {
			if len(n.Runner.Instances()) != 0 {
				t.Fatalf("node still has %v", n.Runner.Instances())
			}
		}
	})
}

func TestBatchJobRetries(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, nodes := grid(t, 4, func(i int) simnet.NodeOptions {
			if i == 0 { // the only node that succeeds is the dearest, so failures come first
				return simnet.NodeOptions{Prices: &scheduler.PriceList{PerInstanceHour: 1000}}
			}
			return simnet.NodeOptions{}
		})
		for _, n := range nodes[1:] {
			n.Runner.SetFail("exit status 1")
		}
		s := spec("job")
		s.Batch, s.MaxRetries = true, 5
		s.Constraints.Node = "" // any node
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		defer cancel()
		m := nodes[0].Market
		if _, err := m.Request(ctx, s); err != nil {
			t.Fatal(err)
		}
		v, err := m.Wait(ctx, "job", func(v scheduler.InstanceView) bool { return v.State == scheduler.StateDone })
		if err != nil || v.Result == "" || v.Node != nodes[0].ID.String() || v.Retries != 3 {
			t.Fatalf("job: %v %+v", err, v)
		}
	})
}

// When a guardian dies, the requester re-signs its delegation with a fresh
// guardian list; a new guardian can then re-place the instance.
func TestGuardiansRefreshed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net, nodes := grid(t, 8, nil)
		req := nodes[0]
		v := placed(t, req.Market, spec("web", "guardians=2"))
		host := net.Node(mustDecode(t, v.Node))
		var dead *simnet.Node
		for _, g := range v.Guardians {
			if n := net.Node(mustDecode(t, g)); n != host {
				dead = n
				break
			}
		}
		dead.Down()
		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		defer cancel()
		v2, err := req.Market.Wait(ctx, "web", func(x scheduler.InstanceView) bool {
			return len(x.Guardians) == 2 && !slices.Contains(x.Guardians, dead.ID.String())
		})
		if err != nil {
			t.Fatalf("guardians not refreshed: %v %+v", err, v2)
		}
		if v2.State != scheduler.StateStarted || v2.Node != v.Node || v2.Epoch != v.Epoch {
			t.Fatalf("refresh disturbed the instance: %+v", v2)
		}
		// Every live guardian now knows the instance.
		for _, g := range v2.Guardians {
			gn := net.Node(mustDecode(t, g))
			if gn == host {
				continue
			}
			waitFor(t, "new guardian knows the instance", 10*time.Second, func() bool {
				return slices.ContainsFunc(gn.Market.Instances(), func(x scheduler.InstanceView) bool {
					return x.InstanceID == v.InstanceID && x.Node == v.Node
				})
			})
		}
		if n := len(host.Runner.Instances()); n != 1 {
			t.Fatalf("host runs %d instances", n)
		}
	})
}

// A host that the membership still shows alive (others reach it: SWIM's
// indirect probes) but whose statuses no longer reach its requester — a
// split bridged by a third party — is re-placed after SilentAfter and the
// grace, instead of never.
func TestSilentHostReplacedWhileMembershipSaysAlive(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net, nodes := grid(t, 6, nil)
		req := nodes[0].Market
		v := placed(t, req, spec("web", "grace=1s"))
		host := mustDecode(t, v.Node)
		net.SetDelay(func(from, to peer.ID, _ []byte) time.Duration {
			if from == host || to == host {
				return time.Hour // a path that carries nothing, on a link that stays up
			}
			return 0
		})
		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		defer cancel()
		moved, err := req.Wait(ctx, "web", func(x scheduler.InstanceView) bool {
			return x.Node != v.Node && x.State == scheduler.StateStarted
		})
		if err != nil {
			t.Fatalf("a silent host's instance was not re-placed: %v (%+v)", err, moved)
		}
		net.SetDelay(nil)
	})
}
