package simnet_test

import (
	"context"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/weftgrid/weft/scheduler"
	"github.com/weftgrid/weft/scheduler/simnet"
)

// One slice per contract, agreed by both sides: a node whose billing slice
// differs from the announcement's declines, saying why; a node with the
// same slice bids, and the award and the contract carry it, signed.
func TestOnlyNodesWithTheSameSliceAgreeContracts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		withSlice := func(s time.Duration) *scheduler.Config {
			c := scheduler.DefaultConfig()
			c.Policy.Slice = s
			return &c
		}
		_, nodes := grid(t, 3, func(i int) simnet.NodeOptions {
			if i == 1 {
				return simnet.NodeOptions{Config: withSlice(time.Minute)}
			}
			return simnet.NodeOptions{Config: withSlice(time.Second)}
		})
		m := nodes[0].Market
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		defer cancel()
		// Pinned to the node with another slice: nothing fits, and why.
		s := spec("other")
		s.Constraints.Node = nodes[1].ID
		if _, err := m.Request(ctx, s); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the decline", 10*time.Second, func() bool {
			for _, a := range m.Auctions() {
				for _, d := range a.Declines {
					if a.Request == "other" && strings.Contains(d.Reason, "slice 1s differs from this node's 1m0s") {
						return true
					}
				}
			}
			return false
		})
		if c := m.Contract(scheduler.NewInstanceID(nodes[0].ID, "other")); c != nil {
			t.Fatalf("a contract across two slice lengths: %+v", c.Info().Award)
		}
		// Pinned to the node with the same slice: placed, slice signed.
		s = spec("same")
		s.Constraints.Node = nodes[2].ID
		v := placed(t, m, s)
		c := m.Contract(v.InstanceID)
		if c == nil || c.Info().Award.Slice != int64(time.Second) || c.Info().Bid.Slice != int64(time.Second) {
			t.Fatalf("contract slice: %+v", c)
		}
	})
}
