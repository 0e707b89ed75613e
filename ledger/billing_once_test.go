package ledger

import (
	"bytes"
	"context"
	"testing"
	"time"
)

// A provider sends a second receipt for a slice the requester already
// acknowledged. Whether CheckReceipt flags a receipt as an overlap depends
// on CID order (the lower CID of two overlapping receipts passes), so a
// second receipt whose CID sorts below the first passed the check and was
// acknowledged too: the requester paid for the slice twice.
func TestRequesterDoesNotAckASlicePaidForAlready(t *testing.T) {
	ctx := context.Background()
	m := newMarket(t, 30)
	lr := memLedger(t, m.req)
	a := m.receipt(t, Usage{CPUMicros: 1000})
	if _, err := lr.Ingest(ctx, rawsOf([]*Entry{m.ce, a})); err != nil {
		t.Fatal(err)
	}
	b := NewBiller(lr, nil, nil, BillerConfig{})
	b.Tick(ctx, t0)
	acked := func(re *Entry) bool {
		ok := false
		lr.View(func(s *Set) {
			for _, e := range s.AcksOf(re.id) {
				ok = ok || e.Author == m.req.ID()
			}
		})
		return ok
	}
	if !acked(a) {
		t.Fatal("first receipt of slice 0 not acknowledged")
	}
	// Another receipt for slice 0, whose CID sorts before the first one.
	var dup *Entry
	for cpu := uint64(2000); dup == nil; cpu++ {
		m.nextReceipt = 0
		if e := m.receipt(t, Usage{CPUMicros: cpu}); bytes.Compare(e.id.Bytes(), a.id.Bytes()) < 0 {
			dup = e
		}
	}
	if _, err := lr.Ingest(ctx, rawsOf([]*Entry{dup})); err != nil {
		t.Fatal(err)
	}
	b.Tick(ctx, t0)
	if acked(dup) {
		bal := lr.Balance(m.req.ID())
		t.Fatalf("acknowledged a second receipt for slice 0 (spent %d = both receipts); it should be disputed", bal.Spent)
	}
	var disputed bool
	lr.View(func(s *Set) { disputed = len(s.DisputesOf(dup.id)) == 1 })
	if !disputed {
		t.Fatal("second receipt for an acknowledged slice not disputed")
	}
	if bal := lr.Balance(m.req.ID()); bal.Spent != a.Value().(Receipt).Amount {
		t.Fatalf("spent %d, want only the first receipt's %d", bal.Spent, a.Value().(Receipt).Amount)
	}
}

// Two nodes on an idle grid, each checkpointing on its own interval, with
// the entries exchanged between checkpoints (gossip, anti-entropy). Each
// one's checkpoint is "growth" to the other, which then checkpoints again:
// the idle ledger gained one checkpoint per node per interval, forever.
func TestIdleGridDoesNotFillWithCheckpoints(t *testing.T) {
	ctx := context.Background()
	a, b := memLedger(t, deterministicSigner(t, 31)), memLedger(t, deterministicSigner(t, 32))
	if _, err := a.Append(ctx, Grant{To: b.ID(), Amount: 1}); err != nil {
		t.Fatal(err)
	}
	exchange := func() {
		for _, p := range [][2]*Ledger{{a, b}, {b, a}} {
			if _, err := p[1].Ingest(ctx, rawsOf(setEntries(p[0]))); err != nil {
				t.Fatal(err)
			}
		}
	}
	checkpoints := func() int { return a.Audit().Checkpoints }
	exchange()
	var after []int
	for round := 0; round < 4; round++ {
		for _, l := range []*Ledger{a, b} {
			if _, err := l.Checkpoint(ctx); err != nil {
				t.Fatal(err)
			}
			exchange()
		}
		after = append(after, checkpoints())
	}
	// The first round records the grant once on each node; nothing but
	// checkpoints arrived since, so the later rounds add nothing.
	if after[len(after)-1] != after[0] {
		t.Fatalf("checkpoints after each round of an idle grid: %v, want no growth after the first", after)
	}
}

// The provider's market starts hosting (and persists that) before the
// contract is appended to the ledger; a crash in between, or a failed
// append, leaves the provider without its own record, and the market does
// not record it again. The requester's record of the same agreement is in
// the ledger, but the biller billed only under the provider's own record:
// the instance ran unbilled. And an agreement the provider recorded twice
// was billed twice.
func TestProviderBillsAnAgreementOnceWhateverItsRecords(t *testing.T) {
	ctx := context.Background()
	req, prov := deterministicSigner(t, 33), deterministicSigner(t, 34)
	now := t0.Add(3500 * time.Millisecond)
	lp, _ := Open(Config{Signer: prov, Now: func() time.Time { return now }})
	defer lp.Close()
	c := Contract{InstanceID: "web", Requester: req.ID(), Provider: prov.ID(), Epoch: 1, Price: Price{CPU: 3600},
		SliceNanos: int64(time.Second), StartNanos: t0.UnixNano()}
	theirs := newLogWriter(req, t0).next(t, c)
	if _, err := lp.AddVerified(ctx, []*Entry{theirs}); err != nil {
		t.Fatal(err)
	}
	receipts := func() int { n := 0; lp.View(func(s *Set) { n = s.Receipts() }); return n }
	NewBiller(lp, &fakeUsage{u: Usage{CPUMicros: 1000}}, nil, BillerConfig{}).Tick(ctx, now)
	if n := receipts(); n != 3 {
		t.Fatalf("%d receipts for 3 complete slices of an agreement the provider has no record of its own of", n)
	}
	// Its own records appear later (twice): nothing is billed again, by
	// this biller or by a new one (a restart).
	for range 2 {
		if _, err := lp.AppendContract(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	now = now.Add(time.Second)
	NewBiller(lp, &fakeUsage{u: Usage{CPUMicros: 1000}}, nil, BillerConfig{}).Tick(ctx, now)
	if n := receipts(); n != 4 {
		t.Fatalf("%d receipts for 4 complete slices of one agreement recorded three times", n)
	}
	if r := lp.Audit(); r.Receipts != 4 {
		t.Fatalf("audit: %d receipts", r.Receipts)
	}
	for _, p := range lp.Audit().Problems {
		if p.Code == CodeOverlap {
			t.Fatalf("slice billed twice: %+v", p)
		}
	}
}
