package settle

import (
	"context"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/weftgrid/weft/ledger"
	"github.com/weftgrid/weft/scheduler"
	"github.com/weftgrid/weft/scheduler/schedtest"
)

// The recorder writes a contract once however often the market reports it
// (a node hosting its own request is told as provider and as requester),
// with the grid's slice; the balance lookup reads the ledger in the
// market's unit; the reachability reads the market's view.
func TestBridgeRecordsOnceAndReadsBothSides(t *testing.T) {
	ctx := context.Background()
	alice, bob := newParty(t), newParty(t)
	l, err := ledger.Open(ledger.Config{Signer: bob.ledger, ContractCheck: CheckContract})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	mc, err := schedtest.Contract(alice.market, bob.market, "web", 1, time.Now().Add(-time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	r := NewRecorder(l, 2*time.Second)
	for range 3 {
		if err := r.RecordContract(ctx, mc); err != nil {
			t.Fatal(err)
		}
	}
	if n := l.Len(); n != 1 {
		t.Fatalf("%d entries after recording one contract three times, want 1", n)
	}
	c, epoch, ok := l.LatestEpoch(string(mc.Info().Request.Instance))
	if !ok || epoch != 1 || !c.Defined() {
		t.Fatalf("latest epoch %s %d %v", c, epoch, ok)
	}
	if b, ok := (Balances{L: l}).Balance(alice.ledger.ID()); !ok || b != 0 {
		t.Fatalf("balance of a requester with no receipts: %d %v", b, ok)
	}

	prov := bob.ledger.ID()
	view := scheduler.InstanceView{InstanceID: mc.Info().Request.Instance, Name: "web", Node: prov.String(), Epoch: 1,
		State: scheduler.StateStarted, RequestedState: scheduler.StateStarted, Mine: true}
	reach := Reach{Instances: func() []scheduler.InstanceView { return []scheduler.InstanceView{view} },
		Alive: func() map[peer.ID]bool { return map[peer.ID]bool{prov: true} }}
	rc := ledger.Receipt{InstanceID: string(view.InstanceID), Epoch: 1}
	if v, reason := reach.Reachable(rc, prov); v != ledger.Reachable {
		t.Fatalf("started on an alive provider: %s %q", v, reason)
	}
	reach.Alive = func() map[peer.ID]bool { return nil }
	if v, _ := reach.Reachable(rc, prov); v != ledger.Unreachable {
		t.Fatalf("provider not alive: %s", v)
	}
}
