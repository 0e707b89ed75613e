package simnet_test

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/weftgrid/weft/scheduler"
	"github.com/weftgrid/weft/scheduler/simnet"
)

// A host daemon that crashes and restarts (its partitions still running the
// instance) learns from its store which contract it ran under, reports it,
// and is fenced by the newer contract.
func TestHostRestartFencedFromStore(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net, nodes := grid(t, 6, func(int) simnet.NodeOptions { return simnet.NodeOptions{Persist: true} })
		req := nodes[0]
		v := placed(t, req.Market, spec("web"))
		host := net.Node(mustDecode(t, v.Node))
		if host == req {
			t.Fatal("placed on the requester")
		}
		host.Crash()
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		defer cancel()
		v2, err := req.Market.Wait(ctx, "web", func(x scheduler.InstanceView) bool { return x.Epoch == 2 && x.State == scheduler.StateStarted })
		if err != nil {
			t.Fatal(err)
		}
		if err := host.Restart(ctx); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "restarted host's stale copy stopped", 30*time.Second, func() bool {
			s := net.Serving(v.InstanceID)
			return len(s) == 1 && s[0].String() == v2.Node
		})
	})
}

// A requester daemon that restarts still knows its instances.
func TestRequesterRestartRemembers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, nodes := grid(t, 4, func(int) simnet.NodeOptions { return simnet.NodeOptions{Persist: true} })
		req := nodes[0]
		v := placed(t, req.Market, spec("web"))
		req.Crash()
		if err := req.Restart(t.Context()); err != nil {
			t.Fatal(err)
		}
		got, err := req.Market.Instance("web")
		if err != nil || got.Node != v.Node || got.Epoch != v.Epoch {
			t.Fatalf("after restart: %v %+v", err, got)
		}
		waitFor(t, "status again", 10*time.Second, func() bool {
			x, _ := req.Market.Instance("web")
			return x.State == scheduler.StateStarted && x.Connection["url"] == v.Connection["url"]
		})
		// And it can still change it.
		s := spec("web")
		s.State = scheduler.StateStopped
		if x := placed(t, req.Market, s); x.State != scheduler.StateStopped {
			t.Fatalf("stop after restart: %+v", x)
		}
	})
}
