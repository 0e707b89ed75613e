package settle

import (
	"testing"
	"time"

	"github.com/weftgrid/weft/ledger"
	"github.com/weftgrid/weft/scheduler/schedtest"
)

// A hosted copy at epoch 1 is fenced by an agreed contract at epoch 2 in
// the ledger, not by the contract it runs under, and not by a contract at
// a higher epoch whose evidence does not say what it says.
func TestNewerFencesAHostedCopyOnlyByAnAgreedHigherEpoch(t *testing.T) {
	alice, bob, carol := newParty(t), newParty(t), newParty(t)
	start := time.Now().Add(-time.Hour).Truncate(time.Minute)
	c1, err := schedtest.Contract(alice.market, bob.market, "web", 1, start)
	if err != nil {
		t.Fatal(err)
	}
	c2, err := schedtest.Contract(alice.market, carol.market, "web", 2, start.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	id := string(c1.Instance())
	copies := []Copy{{ID: id, Epoch: 1}}
	with := func(lc ledger.Contract) func(string) (ledger.Contract, bool) {
		return func(instance string) (ledger.Contract, bool) { return lc, instance == id }
	}

	got := Newer(copies, with(Contract(c2, time.Minute)))
	if len(got) != 1 || got[0].Epoch() != 2 || got[0].Provider() != carol.market.ID() {
		t.Fatalf("with epoch 2 in the ledger: %v, want the epoch-2 contract", got)
	}
	if got := Newer(copies, with(Contract(c1, time.Minute))); len(got) != 0 {
		t.Fatalf("with the copy's own epoch in the ledger: fenced by %v", got)
	}
	if got := Newer([]Copy{{ID: id, Epoch: 2}}, with(Contract(c2, time.Minute))); len(got) != 0 {
		t.Fatalf("the epoch-2 copy fenced by its own contract: %v", got)
	}
	forged := Contract(c1, time.Minute)
	forged.Epoch = 2
	if got := Newer(copies, with(forged)); len(got) != 0 {
		t.Fatalf("fenced by a contract its evidence does not back: %v", got)
	}
	if got := Newer(copies, func(string) (ledger.Contract, bool) { return ledger.Contract{}, false }); len(got) != 0 {
		t.Fatalf("fenced with no contract in the ledger: %v", got)
	}
}
