package simnet_test

import (
	"context"
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"pgregory.net/rapid"

	"github.com/weftgrid/weft/scheduler"
	"github.com/weftgrid/weft/scheduler/simnet"
)

type faultOp struct {
	kind int // 0 kill, 1 restart, 2 partition, 3 heal, 4 kill the current hosts
	node int
	side []bool
	wait time.Duration
}

// No sequence of kills, restarts and partitions leaves two hosts serving
// one instance (or none) once the grid has healed. Rapid draws the plan;
// each plan runs in its own synctest bubble (virtual time).
func TestPropertyOneHostAfterHealing(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		seed := rapid.Uint64().Draw(rt, "seed")
		grace := time.Duration(rapid.IntRange(0, 2).Draw(rt, "grace_s")) * time.Second
		var plan []faultOp
		for i := range rapid.IntRange(1, 10).Draw(rt, "steps") {
			op := faultOp{kind: rapid.IntRange(0, 4).Draw(rt, fmt.Sprint("op", i)), node: rapid.IntRange(0, 4).Draw(rt, fmt.Sprint("node", i))}
			if op.kind == 2 {
				op.side = rapid.SliceOfN(rapid.Bool(), 5, 5).Draw(rt, fmt.Sprint("side", i))
			}
			op.wait = time.Duration(rapid.IntRange(0, 4000).Draw(rt, fmt.Sprint("wait_ms", i))) * time.Millisecond
			plan = append(plan, op)
		}
		var failure string
		synctest.Test(t, func(t *testing.T) { failure = runFaultPlan(t, seed, grace, plan) })
		if failure != "" {
			rt.Fatal(failure)
		}
	})
}

func runFaultPlan(t *testing.T, seed uint64, grace time.Duration, plan []faultOp) string {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	net := simnet.New(simnet.Options{Seed: seed})
	defer net.Close()
	cfg := scheduler.DefaultConfig()
	cfg.WaitRetry = 500 * time.Millisecond
	nodes, err := net.AddNodes(ctx, 5, func(int) simnet.NodeOptions { return simnet.NodeOptions{Config: &cfg} })
	if err != nil {
		return err.Error()
	}
	req := nodes[0]
	s := spec("web", "wait_for_capacity=true", "guardians=2")
	s.Grace = grace
	if _, err := req.Market.Request(ctx, s); err != nil {
		return err.Error()
	}
	id := scheduler.NewInstanceID(req.ID, "web")
	for _, op := range plan {
		switch op.kind {
		case 0:
			nodes[op.node].Down()
		case 1:
			nodes[op.node].Up()
		case 2:
			var a, b []peer.ID
			for j, n := range nodes {
				if op.side[j] {
					a = append(a, n.ID)
				} else {
					b = append(b, n.ID)
				}
			}
			net.Partition(a, b)
		case 3:
			net.Heal()
		case 4:
			for _, h := range net.Serving(id) {
				net.Node(h).Down()
			}
		}
		time.Sleep(op.wait)
	}
	net.Heal()
	for _, n := range nodes {
		n.Up()
	}
	deadline := time.Now().Add(time.Minute)
	for len(net.Serving(id)) != 1 {
		if time.Now().After(deadline) {
			return fmt.Sprintf("a minute after healing, %d hosts serve the instance", len(net.Serving(id)))
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(10 * time.Second) // virtual time: no late duplicate may appear
	if n := len(net.Serving(id)); n != 1 {
		return fmt.Sprintf("healed grid drifted to %d hosts", n)
	}
	v, err := req.Market.Instance("web")
	if err != nil || v.Node != net.Serving(id)[0].String() {
		return fmt.Sprintf("requester's view (node %s, state %s) disagrees with the grid (%v)", v.Node, v.State, net.Serving(id))
	}
	return ""
}
