package p2p_test

import (
	"fmt"
	"slices"
	"sync"

	"github.com/hashicorp/memberlist"
	"testing"
	"time"

	"github.com/weftgrid/weft/p2p"
	"github.com/weftgrid/weft/p2p/p2ptest"
)

type conflictRecorder struct {
	mu  sync.Mutex
	got []string
}

func (r *conflictRecorder) NotifyConflict(existing, other *memberlist.Node) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, fmt.Sprintf("%s: %v:%d vs %v:%d", existing.Name, existing.Addr, existing.Port, other.Addr, other.Port))
}

func (r *conflictRecorder) conflicts() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.got)
}

// A member restarted with the same identity (on another port) is accepted
// at once: memberlist's address is only a placeholder, so it must not change
// with the libp2p listen port, or memberlist rejects the member's alive
// messages (and its new advert) as an address conflict.
func TestRestartedMemberOnNewPortNoConflict(t *testing.T) {
	rec := &conflictRecorder{}
	seed := p2ptest.NewNode(t, func(c *p2p.Config) {
		prev := c.Tune
		c.Tune = func(m *memberlist.Config) {
			if prev != nil {
				prev(m)
			}
			m.Conflict = rec
		}
	})
	victim := p2ptest.Start(t, p2ptest.Bootstrap(seed))
	dir, id := victim.DataDir(), victim.ID()
	p2ptest.WaitFor(t, 15*time.Second, func() error {
		if st, ok := p2ptest.StateOf(seed, id); !ok || st != p2p.StateAlive {
			return fmt.Errorf("seed sees victim as %v (known %v)", st, ok)
		}
		return nil
	})
	if err := victim.Abort(); err != nil {
		t.Logf("abort: %v", err)
	}
	back := p2ptest.NewNode(t, p2ptest.DataDir(dir), p2ptest.Bootstrap(seed))
	if err := back.SetAdvert(p2p.Advert{Labels: map[string]string{"gen": "2"}}); err != nil {
		t.Logf("set advert: %v", err)
	}
	p2ptest.WaitFor(t, 30*time.Second, func() error {
		if c := rec.conflicts(); len(c) > 0 {
			return nil
		}
		for _, m := range seed.Members() {
			if m.ID == id && m.State == p2p.StateAlive && m.Advert.Labels["gen"] == "2" {
				return nil
			}
		}
		return fmt.Errorf("seed has not seen the restarted member's advert")
	})
	if c := rec.conflicts(); len(c) > 0 {
		t.Fatalf("memberlist address conflicts for the restarted member: %v", c)
	}
}
