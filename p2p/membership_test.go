package p2p_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/weftgrid/weft/p2p"
	"github.com/weftgrid/weft/p2p/p2ptest"
)

func TestThreeNodesConverge(t *testing.T) {
	c := p2ptest.NewCluster(t, 3)
	c.WaitConverged(t, 15*time.Second)
	for _, n := range c.Nodes {
		for _, m := range n.Members() {
			if !m.AdvertOK {
				t.Errorf("%s: member %s has no verified advert", n.ID(), m.ID)
			}
		}
	}
	_ = fmt.Sprint
	_ = p2p.StateAlive
}
