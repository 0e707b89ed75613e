package settle

import (
	"context"
	"testing"
	"time"

	"github.com/weftgrid/weft/ledger"
	"github.com/weftgrid/weft/scheduler/schedtest"
)

// A guardian that re-places an instance while its requester is offline
// writes the contract itself: the contract is valid evidence (the award's
// signer is a guardian the requester's signed request names), every node's
// audit accepts it from the ledger alone, and its slices bill cleanly. A
// peer the request does not name writes nothing valid.
func TestGuardianContractAuditsClean(t *testing.T) {
	ctx := context.Background()
	alice, guard, bob, mallory := newParty(t), newParty(t), newParty(t), newParty(t)
	start := time.Now().Add(-time.Hour).Truncate(time.Minute)
	mc, err := schedtest.GuardianContract(alice.market, guard.market, bob.market, "web", 2, start)
	if err != nil {
		t.Fatal(err)
	}
	lc := Contract(mc, time.Minute)
	if lc.Auctioneer != guard.ledger.ID() {
		t.Fatalf("auctioneer %q, want the guardian", lc.Auctioneer)
	}
	if err := CheckContract(lc); err != nil {
		t.Fatalf("a guardian's contract fails the check: %v", err)
	}
	gl, err := ledger.Open(ledger.Config{Signer: guard.ledger, ContractCheck: CheckContract})
	if err != nil {
		t.Fatal(err)
	}
	defer gl.Close()
	bl, err := ledger.Open(ledger.Config{Signer: bob.ledger, ContractCheck: CheckContract})
	if err != nil {
		t.Fatal(err)
	}
	defer bl.Close()
	ge, err := gl.AppendContract(ctx, lc)
	if err != nil {
		t.Fatal(err)
	}
	be, err := bl.AppendContract(ctx, lc)
	if err != nil {
		t.Fatal(err)
	}
	from, to := lc.SliceBounds(0)
	re, err := bl.Append(ctx, ledger.MakeReceipt(be.CID(), lc, 0, from, to, ledger.Usage{CPUMicros: 1000}))
	if err != nil {
		t.Fatal(err)
	}
	// Mallory claims to be the auctioneer of the same instance.
	forged := lc
	forged.Auctioneer, forged.Epoch = mallory.ledger.ID(), 3
	ml, err := ledger.Open(ledger.Config{Signer: mallory.ledger})
	if err != nil {
		t.Fatal(err)
	}
	defer ml.Close()
	fe, err := ml.AppendContract(ctx, forged)
	if err != nil {
		t.Fatal(err)
	}
	// Every node (here: an auditor holding every entry) agrees.
	auditor, err := ledger.Open(ledger.Config{ContractCheck: CheckContract})
	if err != nil {
		t.Fatal(err)
	}
	defer auditor.Close()
	if _, err := auditor.Ingest(ctx, [][]byte{ge.Bytes(), be.Bytes(), re.Bytes()}); err != nil {
		t.Fatal(err)
	}
	if rep := auditor.Audit(); !rep.OK {
		t.Fatalf("audit of a guardian's contract: %+v", rep.Problems)
	}
	if _, err := auditor.Ingest(ctx, [][]byte{fe.Bytes()}); err != nil {
		t.Fatal(err)
	}
	rep := auditor.Audit()
	for _, p := range rep.Problems {
		if p.CID != fe.CID().String() {
			t.Errorf("problem on an honest entry: %+v", p)
		}
	}
	// It carries no weight, and is listed (not a problem: anyone can write
	// such a contract, and it must not fail every node's audit).
	if !rep.OK || len(rep.Ignored) != 1 || rep.Ignored[0].CID != fe.CID().String() {
		t.Fatalf("a contract by a peer the delegation does not name: ok %v ignored %+v", rep.OK, rep.Ignored)
	}
}
