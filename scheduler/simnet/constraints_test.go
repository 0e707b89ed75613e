package simnet_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/weftgrid/weft/scheduler"
	"github.com/weftgrid/weft/scheduler/simnet"
)

func nodeIndex(nodes []*simnet.Node, id string) int {
	for i, n := range nodes {
		if n.ID.String() == id {
			return i
		}
	}
	return -1
}

func TestConstraintsHonoured(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		regions := []string{"eu", "us"}
		zones := []string{"a", "b", "c"}
		net, nodes := grid(t, 12, func(i int) simnet.NodeOptions {
			p := scheduler.PriceList{PerCoreHour: scheduler.Amount(1000 * (i + 1))}
			return simnet.NodeOptions{Labels: map[string]string{"region": regions[i%2], "zone": zones[i%3]}, Prices: &p}
		})
		req := nodes[0].Market
		step := func(name string, f func()) { t.Log("step:", name); f() }

		step("pin", func() {
			v := placed(t, req, spec("pinned", "node="+nodes[7].ID.String()))
			if v.Node != nodes[7].ID.String() {
				t.Fatalf("pinned to 7, placed on %d", nodeIndex(nodes, v.Node))
			}
		})
		step("labels", func() {
			for _, name := range []string{"eu1", "eu2", "eu3"} {
				v := placed(t, req, spec(name, "region=eu", "label.zone=b"))
				i := nodeIndex(nodes, v.Node)
				if i%2 != 0 || i%3 != 1 {
					t.Fatalf("%s on node %d, which is not region=eu zone=b", name, i)
				}
			}
		})
		step("colocate", func() {
			db := placed(t, req, spec("db"))
			app := placed(t, req, spec("app", "colocate=db"))
			if app.Node != db.Node {
				t.Fatalf("app on %s, db on %s", app.Node, db.Node)
			}
		})
		step("anti-affinity per node", func() {
			seen := map[string]bool{}
			for _, name := range []string{"r1", "r2", "r3", "r4"} {
				v := placed(t, req, spec(name, "anti_affinity=replicas", "region=us"))
				if seen[v.Node] {
					t.Fatalf("%s shares node %s with another replica", name, v.Node)
				}
				seen[v.Node] = true
			}
		})
		step("anti-affinity per label", func() {
			seen := map[string]bool{}
			for _, name := range []string{"z1", "z2", "z3"} {
				v := placed(t, req, spec(name, "anti_affinity=zoned", "anti_affinity_scope=zone"))
				zone := zones[nodeIndex(nodes, v.Node)%3]
				if seen[zone] {
					t.Fatalf("%s in zone %s twice", name, zone)
				}
				seen[zone] = true
			}
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			s := spec("z4", "anti_affinity=zoned", "anti_affinity_scope=zone")
			if _, err := req.Request(ctx, s); err != nil {
				t.Fatal(err)
			}
			v, _ := req.Wait(ctx, "z4", func(v scheduler.InstanceView) bool { ok, _ := scheduler.Reached(v); return ok })
			if v.State != scheduler.StateFailed || !strings.Contains(v.Reason, "excluded by anti_affinity=zoned") {
				t.Fatalf("fourth zoned replica: %s %q", v.State, v.Reason)
			}
		})
		step("max price", func() {
			// Node i charges (i+1) milli-credits per core-hour; 500 millis
			// cost (i+1)/2 of that. Cheapest wins anyway; with a pin to an
			// expensive node and a max price below it nothing fits.
			v := placed(t, req, spec("cheap", "max_price=0.0007"))
			if i := nodeIndex(nodes, v.Node); scheduler.Amount(500*(i+1)) > 700 {
				t.Fatalf("placed on node %d over max price", i)
			}
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			s := spec("dear", "max_price=0.0001")
			if _, err := req.Request(ctx, s); err != nil {
				t.Fatal(err)
			}
			v, _ = req.Wait(ctx, "dear", func(v scheduler.InstanceView) bool { ok, _ := scheduler.Reached(v); return ok })
			if v.State != scheduler.StateFailed || !strings.Contains(v.Reason, "over max price") {
				t.Fatalf("dear: %s %q", v.State, v.Reason)
			}
		})
		step("max rtt", func() {
			for _, n := range nodes[1:] {
				net.SetLatency(nodes[0].ID, n.ID, 40*time.Millisecond)
			}
			net.SetLatency(nodes[0].ID, nodes[9].ID, 2*time.Millisecond)
			net.SetLatency(nodes[0].ID, nodes[0].ID, 0)
			// The requester itself is at RTT 0: keep it out with a label.
			v := placed(t, req, spec("edge", "max_rtt=10ms", "region=us"))
			if v.Node != nodes[9].ID.String() {
				t.Fatalf("edge placed on node %d, want the only near node 9", nodeIndex(nodes, v.Node))
			}
		})
	})
}

func TestUnknownConstraintKeyNamed(t *testing.T) {
	s := scheduler.RequestSpec{}
	err := scheduler.ApplySLA(&s, []string{"region=eu", "colour=blue"})
	if !errors.Is(err, scheduler.ErrUnknownConstraint) || !strings.Contains(err.Error(), `"colour"`) {
		t.Fatalf("err = %v", err)
	}
}

func TestUnplaceableExplained(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, nodes := grid(t, 20, func(i int) simnet.NodeOptions {
			o := simnet.NodeOptions{Labels: map[string]string{"region": "us"}}
			if i < 3 {
				o.Labels = map[string]string{"region": "eu"}
				o.Capacity = scheduler.Resources{CPUMillis: 1000, MemoryBytes: 1 << 30, DiskBytes: 10 << 30}
			}
			return o
		})
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		s := spec("big", "region=eu")
		s.Resources.MemoryBytes = 4 << 30
		if _, err := nodes[5].Market.Request(ctx, s); err != nil {
			t.Fatal(err)
		}
		v, _ := nodes[5].Market.Wait(ctx, "big", func(v scheduler.InstanceView) bool { ok, _ := scheduler.Reached(v); return ok })
		want := "no node placed big: 17 excluded by region=eu, 3 lacked memory"
		if v.State != scheduler.StateFailed || v.Reason != want {
			t.Fatalf("got %s %q, want %q", v.State, v.Reason, want)
		}
		if _, err := scheduler.Reached(v); !errors.Is(err, scheduler.ErrUnplaceable) {
			t.Fatalf("Reached error %v", err)
		}
	})
}

func TestWaitForCapacity(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net, nodes := grid(t, 5, nil)
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		defer cancel()
		s := spec("huge", "wait_for_capacity=true")
		s.Resources.MemoryBytes = 64 << 30
		if _, err := nodes[0].Market.Request(ctx, s); err != nil {
			t.Fatal(err)
		}
		v, _ := nodes[0].Market.Wait(ctx, "huge", func(v scheduler.InstanceView) bool { return v.State == scheduler.StateWaiting })
		if !strings.Contains(v.Reason, "5 lacked memory") {
			t.Fatalf("waiting reason %q", v.Reason)
		}
		bigNode, err := net.AddNode(ctx, simnet.NodeOptions{Capacity: scheduler.Resources{CPUMillis: 8000, MemoryBytes: 128 << 30, DiskBytes: 1 << 40}})
		if err != nil {
			t.Fatal(err)
		}
		v, err = nodes[0].Market.Wait(ctx, "huge", func(v scheduler.InstanceView) bool { return v.State == scheduler.StateStarted })
		if err != nil || v.Node != bigNode.ID.String() {
			t.Fatalf("after capacity arrived: %v %+v", err, v)
		}
	})
}
