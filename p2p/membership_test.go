package p2p_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/weftgrid/weft/p2p"
	"github.com/weftgrid/weft/p2p/p2ptest"
)

func TestTwentyNodesConverge(t *testing.T) {
	c := p2ptest.NewCluster(t, 20)
	c.WaitConverged(t, 60*time.Second) // 20 nodes in one process: slow when the machine is busy
	for _, n := range c.Nodes {
		ms := n.Members()
		if len(ms) != 20 {
			t.Fatalf("%s knows %d members, want 20", n.ID(), len(ms))
		}
		for _, m := range ms {
			if !m.AdvertOK || m.Advert.CPUMillis != 0 && m.State != p2p.StateAlive {
				t.Errorf("%s: member %s: advert ok %v state %s", n.ID(), m.ID, m.AdvertOK, m.State)
			}
			if len(m.Addrs) == 0 {
				t.Errorf("%s: member %s has no addresses", n.ID(), m.ID)
			}
		}
	}
}

func TestKilledNodeDeclaredDeadThenRejoins(t *testing.T) {
	c := p2ptest.NewCluster(t, 5)
	c.WaitConverged(t, 15*time.Second)
	victim := c.Nodes[4]
	dir := victim.DataDir()
	id := victim.ID()
	events, cancel := c.Nodes[0].SubscribeMembers()
	defer cancel()
	if err := victim.Abort(); err != nil {
		t.Logf("abort: %v", err)
	}
	survivors := c.Nodes[:4]
	p2ptest.WaitFor(t, 20*time.Second, func() error {
		for _, n := range survivors {
			if st, ok := p2ptest.StateOf(n, id); !ok || st != p2p.StateDead {
				return fmt.Errorf("%s sees victim as %v (known %v)", n.ID().ShortString(), st, ok)
			}
		}
		return nil
	})
	sawDead := false
	for !sawDead {
		select {
		case ev := <-events:
			if ev.Member.ID == id && ev.Type == p2p.EventDead {
				sawDead = true
				if ev.Member.Left {
					t.Error("a crashed node was reported as having left")
				}
			}
		case <-time.After(5 * time.Second):
			t.Fatal("no dead event for the victim")
		}
	}

	// Restart with the same data dir: same identity, alive everywhere again.
	back := p2ptest.NewNode(t, p2ptest.DataDir(dir), p2ptest.Bootstrap(c.Nodes[0]))
	if back.ID() != id {
		t.Fatalf("restarted node has ID %s, want %s", back.ID(), id)
	}
	p2ptest.WaitFor(t, 20*time.Second, func() error {
		for _, n := range append(survivors, back) {
			if st, ok := p2ptest.StateOf(n, id); !ok || st != p2p.StateAlive {
				return fmt.Errorf("%s sees rejoined node as %v", n.ID().ShortString(), st)
			}
			if got := n.AliveCount(); got != 5 {
				return fmt.Errorf("%s sees %d alive, want 5", n.ID().ShortString(), got)
			}
		}
		return nil
	})
}

func TestGracefulLeave(t *testing.T) {
	c := p2ptest.NewCluster(t, 3)
	c.WaitConverged(t, 15*time.Second)
	id := c.Nodes[2].ID()
	if err := c.Nodes[2].Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Nodes[2].Close(); err != nil { // idempotent
		t.Fatal(err)
	}
	p2ptest.WaitFor(t, 10*time.Second, func() error {
		for _, n := range c.Nodes[:2] {
			for _, m := range n.Members() {
				if m.ID == id && m.State == p2p.StateDead && m.Left {
					continue
				} else if m.ID == id {
					return fmt.Errorf("%s: leaver is %s left=%v", n.ID().ShortString(), m.State, m.Left)
				}
			}
		}
		return nil
	})
}

func TestAdvertUpdateSpreads(t *testing.T) {
	c := p2ptest.NewCluster(t, 3)
	c.WaitConverged(t, 15*time.Second)
	a := p2p.Advert{CPUMillis: 1500, MemoryBytes: 1 << 30, DiskBytes: 5 << 30, FreePartitions: 3, Labels: map[string]string{"region": "eu"}}
	if err := c.Nodes[0].SetAdvert(a); err != nil {
		t.Fatal(err)
	}
	p2ptest.WaitFor(t, 10*time.Second, func() error {
		for _, n := range c.Nodes {
			for _, m := range n.Members() {
				if m.ID == c.Nodes[0].ID() && (m.Advert.FreePartitions != 3 || m.Advert.Labels["region"] != "eu") {
					return fmt.Errorf("%s sees advert %+v", n.ID().ShortString(), m.Advert)
				}
			}
		}
		return nil
	})
	big := p2p.Advert{Labels: map[string]string{}}
	for i := range 40 {
		big.Labels[fmt.Sprintf("label-%02d", i)] = "some-longish-value"
	}
	if err := c.Nodes[0].SetAdvert(big); err == nil {
		t.Fatal("an advert over the metadata limit was accepted")
	}
}
