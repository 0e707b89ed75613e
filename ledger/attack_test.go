package ledger

import (
	"context"
	"errors"
	"testing"
	"time"
)

// errUnagreed is the contract check of these tests: a contract counts only
// when its Auction field says "agreed" (standing in for the market's signed
// evidence, which settle.CheckContract verifies).
var errUnagreed = errors.New("no evidence of agreement")

func agreedOnly(c Contract) error {
	if c.Auction != "agreed" {
		return errUnagreed
	}
	return nil
}

// TestForgedContractDoesNotBillItsNamedRequester: a stranger writes a
// contract naming a victim as its requester and itself as provider, with no
// evidence that the victim agreed, and bills it at any price. The victim's
// billing loop must not acknowledge those receipts (it knows no such
// instance, so its market has no view to object with), and no balance may
// move: the contract fails the contract check.
func TestForgedContractDoesNotBillItsNamedRequester(t *testing.T) {
	ctx := context.Background()
	victim, thief := deterministicSigner(t, 140), deterministicSigner(t, 141)
	now := t0.Add(10 * time.Minute)
	clock := func() time.Time { return now }
	lv, err := Open(Config{Signer: victim, Now: clock, ContractCheck: agreedOnly})
	if err != nil {
		t.Fatal(err)
	}
	defer lv.Close()
	lt, err := Open(Config{Signer: thief, Now: clock, ContractCheck: agreedOnly})
	if err != nil {
		t.Fatal(err)
	}
	defer lt.Close()
	c := Contract{InstanceID: "forged", Requester: victim.ID(), Provider: thief.ID(), Epoch: 1,
		Price: Price{CPU: 1 << 40}, SliceNanos: int64(time.Minute), StartNanos: t0.UnixNano()}
	ce, err := lt.AppendContract(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	for i := uint64(0); i < 3; i++ {
		from, to := c.SliceBounds(i)
		if _, err := lt.Append(ctx, MakeReceipt(ce.CID(), c, i, from, to, Usage{CPUMicros: 1 << 40})); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := lv.Ingest(ctx, rawsOf(setEntries(lt))); err != nil {
		t.Fatal(err)
	}
	NewBiller(lv, nil, nil, BillerConfig{}).Tick(ctx, now)
	var acks int
	lv.View(func(s *Set) {
		for _, re := range s.ReceiptsOf(ce.CID()) {
			acks += len(s.AcksOf(re.CID()))
		}
	})
	if acks != 0 {
		t.Fatalf("the victim acknowledged %d receipts of a contract it never agreed to", acks)
	}
	if b := lv.Balance(victim.ID()); b.Spent != 0 || b.PendingSpent != 0 {
		t.Fatalf("victim's balance moved by a forged contract: %+v", b)
	}
	if b := lv.Balance(thief.ID()); b.Earned != 0 || b.PendingEarned != 0 {
		t.Fatalf("the forger earns from a forged contract: %+v", b)
	}
}
