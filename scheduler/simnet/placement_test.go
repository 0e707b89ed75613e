package simnet_test

import (
	"testing"
	"testing/synctest"

	"github.com/weftgrid/weft/scheduler"
)

func TestPlacementOn20Nodes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net, nodes := grid(t, 20, nil)
		v := placed(t, nodes[3].Market, spec("web"))
		if v.State != scheduler.StateStarted || v.Node == "" || v.Connection["url"] == "" || v.Epoch != 1 {
			t.Fatalf("view %+v", v)
		}
		if got := net.Serving(v.InstanceID); len(got) != 1 || got[0].String() != v.Node {
			t.Fatalf("serving on %v, view says %s", got, v.Node)
		}
		a := nodes[3].Market.Auctions()
		if len(a) != 1 || len(a[0].Bids)+len(a[0].Declines) != 20 || a[0].Winner != v.Node {
			t.Fatalf("auction %+v", a)
		}
	})
}
