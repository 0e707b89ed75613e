package p2p

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
)

func testNode(t *testing.T, boot *Node) *Node {
	t.Helper()
	c := DefaultConfig()
	c.DataDir = t.TempDir()
	c.Listen = []string{"/ip4/127.0.0.1/tcp/0"}
	c.Preset = PresetLocal
	c.MDNS, c.DHTDiscovery, c.NAT = false, false, false
	c.DiscoveryInterval = 300 * time.Millisecond
	c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	// Stop gossiping to dead members quickly, so that healing below
	// relies on the node retrying failed members.
	c.Tune = func(mc *memberlist.Config) { mc.GossipToTheDeadTime = 300 * time.Millisecond }
	if boot != nil {
		for _, a := range boot.Addrs() {
			c.Bootstrap = append(c.Bootstrap, a.String())
		}
	}
	n, err := New(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

func waitFor(t *testing.T, timeout time.Duration, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %v", timeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestPartitionHeals splits 4 nodes into two halves that refuse each other
// until each side declares the other dead, lifts the split, and expects one
// membership again: dead members are retried (memberlist alone never would).
func TestPartitionHeals(t *testing.T) {
	a := testNode(t, nil)
	nodes := []*Node{a, testNode(t, a), testNode(t, a), testNode(t, a)}
	allAlive := func(want int) func() error {
		return func() error {
			for _, n := range nodes {
				if got := n.AliveCount(); got != want {
					return fmt.Errorf("%s sees %d alive, want %d", n.ID().ShortString(), got, want)
				}
			}
			return nil
		}
	}
	waitFor(t, 15*time.Second, allAlive(4))
	left, right := nodes[:2], nodes[2:]
	until := time.Now().Add(time.Hour)
	cut := func(x, y []*Node, until time.Time) {
		for _, n := range x {
			for _, o := range y {
				n.gater.ban(o.ID(), until)
				_ = n.host.Network().ClosePeer(o.ID())
			}
		}
	}
	cut(left, right, until)
	cut(right, left, until)
	waitFor(t, 20*time.Second, allAlive(2))
	time.Sleep(time.Second) // the partition outlasts gossip to the dead
	cut(left, right, time.Time{})
	cut(right, left, time.Time{})
	waitFor(t, 30*time.Second, allAlive(4))
}
