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

// TestStrangersReceiptDoesNotGetTheProvidersDisputed: a stranger writes a
// receipt for someone else's contract, for the very slice the provider
// bills, with a CID ground to sort before the provider's. The provider's
// honest receipt must still check out (not "overlap": the stranger's bills
// nothing), be acknowledged, and earn.
func TestStrangersReceiptDoesNotGetTheProvidersDisputed(t *testing.T) {
	m := newMarket(t, 142)
	stranger := newLogWriter(deterministicSigner(t, 144), t0)
	honest := m.receipt(t, Usage{CPUMicros: 1000})
	hr := honest.Value().(Receipt)
	var forged *Entry
	for k := uint64(0); ; k++ {
		r := MakeReceipt(m.ce.id, m.c, hr.Slice, hr.FromNanos, hr.ToNanos, Usage{CPUMicros: k})
		w := *stranger
		e := w.next(t, r)
		if e.id.KeyString() < honest.id.KeyString() {
			forged = e
			break
		}
	}
	s := setOf(m.ce, forged, honest)
	at := time.Unix(0, hr.ToNanos).Add(time.Second)
	if err := CheckReceiptAt(s, honest, at); err != nil {
		t.Fatalf("the provider's receipt is refused because of a stranger's: %v", err)
	}
	rep := Audit(s, AuditOptions{})
	for _, p := range rep.Problems {
		if p.CID == honest.id.String() {
			t.Fatalf("the provider's receipt is a problem because of a stranger's: %+v", p)
		}
	}
}

// TestReceiptSliceIndexCannotWrap: the slice index is a uint64 and its
// bounds are Start + i × slice in int64. Index 2^64-1 wraps to the slice
// before the contract began, and 2^64-k to k slices before it: a provider
// billed periods outside its contract that no check refused (each within
// "its" slice's bounds, none overlapping the real slices); an index a
// multiple of 2^64/gcd above a real one billed that slice under another
// index. Both must be refused and reported.
func TestReceiptSliceIndexCannotWrap(t *testing.T) {
	m := newMarket(t, 146)
	sl := uint64(m.c.SliceNanos)
	wrap := uint64(1) << 63 / (sl &^ (sl - 1)) * 2 // 2^64 / (largest power of 2 dividing the slice)
	for _, i := range []uint64{^uint64(0), ^uint64(0) - 4, wrap, wrap + 3, 1 << 63} {
		from, to := m.c.SliceBounds(i)
		re := m.pw.next(t, MakeReceipt(m.ce.id, m.c, i, from, to, Usage{CPUMicros: 1}))
		s := setOf(m.ce, re)
		at := time.Unix(0, max(to, m.c.StartNanos)).Add(time.Hour)
		if err := CheckReceiptAt(s, re, at); err == nil {
			t.Errorf("slice %d, period [%d,%d) (contract starts %d): receipt accepted", i, from, to, m.c.StartNanos)
		}
		found := false
		for _, p := range Audit(s, AuditOptions{}).Problems {
			found = found || (p.CID == re.id.String() && p.Code == CodeBadReceipt)
		}
		if !found {
			t.Errorf("slice %d: the audit reports no bad_receipt", i)
		}
	}
}

// TestOneSliceSplitIntoManyReceipts: caps bound one slice, so a provider
// that splits one slice into receipts for disjoint parts of it, each at the
// caps, bills the slice several times over with no overlapping periods.
// Every receipt after the first for one (contract, slice) is an overlap,
// and the requester acknowledges only one of them, whichever it sees first.
func TestOneSliceSplitIntoManyReceipts(t *testing.T) {
	m := newMarket(t, 148)
	lo, hi := m.c.SliceBounds(0)
	mid := lo + (hi-lo)/2
	a := m.pw.next(t, MakeReceipt(m.ce.id, m.c, 0, lo, mid, m.c.Caps))
	b := m.pw.next(t, MakeReceipt(m.ce.id, m.c, 0, mid, hi, m.c.Caps))
	at := time.Unix(0, hi).Add(time.Second)
	s := setOf(m.ce, a, b)
	errA, errB := CheckReceiptAt(s, a, at), CheckReceiptAt(s, b, at)
	if errA == nil && errB == nil {
		t.Fatal("two receipts for slice 0, each at the caps, both pass the requester's check")
	}
	n := 0
	for _, p := range Audit(s, AuditOptions{}).Problems {
		if p.Code == CodeOverlap {
			n++
		}
	}
	if n == 0 {
		t.Fatal("the audit reports no overlap for a slice billed twice")
	}
	// The requester that acknowledged one refuses the other, whatever the
	// CID order.
	for _, first := range []*Entry{a, b} {
		other := b
		if first == b {
			other = a
		}
		ack := m.rw.next(t, Ack{Receipt: first.id, Amount: first.Value().(Receipt).Amount})
		s := setOf(m.ce, a, b, ack)
		if err := overlapsAcked(s, other, other.Value().(Receipt), m.req.ID()); err == nil {
			t.Fatal("the requester would acknowledge a second receipt for a slice it already paid")
		}
	}
}

// TestStrangersEntriesDoNotFailTheAudit: a stranger signs, about someone
// else's honest contract, a receipt, an ack, a dispute and an end, plus
// references to entries that do not exist and a contract naming others.
// None may make the honest ledger's audit fail (every node would report
// ok: false for good), end the contract, or move a balance; each is listed
// as ignored.
func TestStrangersEntriesDoNotFailTheAudit(t *testing.T) {
	m := newMarket(t, 150)
	re := m.receipt(t, Usage{CPUMicros: 1000})
	ack := m.ack(t, re)
	sw := newLogWriter(deterministicSigner(t, 152), t0)
	nowhere := CIDOf([]byte("nothing"))
	lo, hi := m.c.SliceBounds(1)
	forgedC := m.c
	forgedC.Epoch, forgedC.Auctioneer = 9, ""
	junk := []*Entry{
		sw.next(t, MakeReceipt(m.ce.id, m.c, 1, lo, hi, Usage{CPUMicros: 5})),
		sw.next(t, Ack{Receipt: re.id, Amount: 1}),
		sw.next(t, Dispute{Receipt: re.id, Reason: "no"}),
		sw.next(t, End{Contract: m.ce.id, AtNanos: m.c.StartNanos, State: EndFailed}),
		sw.next(t, MakeReceipt(nowhere, m.c, 0, m.c.StartNanos, m.c.StartNanos+1, Usage{})),
		sw.next(t, Ack{Receipt: nowhere, Amount: 1}),
		sw.next(t, Dispute{Receipt: nowhere, Reason: "no"}),
		sw.next(t, End{Contract: nowhere, AtNanos: 1, State: EndDone}),
		sw.next(t, forgedC),
	}
	s := setOf(append([]*Entry{m.ce, re, ack}, junk...)...)
	before := BalanceOf(setOf(m.ce, re, ack), m.req.ID(), nil)
	r := Audit(s, AuditOptions{})
	if !r.OK || len(r.Problems) != 0 {
		t.Fatalf("a stranger's entries fail the audit: %+v", r.Problems)
	}
	if len(r.Ignored) < len(junk)-1 { // the forged contract at a new epoch has no problem of its own without a check
		t.Fatalf("%d ignored, want the stranger's entries listed: %+v", len(r.Ignored), r.Ignored)
	}
	if r.Acked != 1 || len(r.Disputed) != 0 {
		t.Fatalf("acked %d disputed %v: the stranger's answers counted", r.Acked, r.Disputed)
	}
	if sp := SpanOf(s, m.ce); sp.EndNanos != 0 {
		t.Fatalf("a stranger's end ended the contract: %+v", sp)
	}
	if after := BalanceOf(s, m.req.ID(), nil); after != before {
		t.Fatalf("balance moved: %+v → %+v", before, after)
	}
}

// TestRequesterCannotEndRetroactivelyOverItsAcks: a requester that
// acknowledged slices, then signs an end dated back to the contract's start,
// must not turn those receipts into after_end problems pinned on an honest
// provider (its own earlier acks say the slices were served and owed).
func TestRequesterCannotEndRetroactivelyOverItsAcks(t *testing.T) {
	m := newMarket(t, 154)
	es := []*Entry{m.ce}
	var receipts []*Entry
	for i := 0; i < 3; i++ {
		re := m.receipt(t, Usage{CPUMicros: 1000})
		receipts = append(receipts, re)
		es = append(es, re, m.ack(t, re))
	}
	end := m.rw.next(t, End{Contract: m.ce.id, AtNanos: m.c.StartNanos, State: EndStopped})
	s := setOf(append(es, end)...)
	r := Audit(s, AuditOptions{})
	for _, re := range receipts {
		if codes := codesFor(r, re); hasCode(codes, CodeAfterEnd) {
			t.Fatalf("an acknowledged receipt is after_end by the requester's later, backdated end: %+v", r.Problems)
		}
	}
	// A receipt for a later slice, not acknowledged before the end, is
	// still after the end.
	late := m.receipt(t, Usage{CPUMicros: 1000})
	s.Add(late)
	if !hasCode(codesFor(Audit(s, AuditOptions{}), late), CodeAfterEnd) {
		t.Fatal("a receipt after the end, never acknowledged, is not after_end")
	}
}

// TestForgedContractsEndDoesNotCountAsOurs: a stranger writes a contract
// for an instance this node requested, at its epoch, naming itself as
// provider, and ends it. The node's record that its own end of billing is
// written (Ledger.Ended) must not be satisfied by it, or the node never
// ends the real contract and its host is never told it is unpaid.
func TestForgedContractsEndDoesNotCountAsOurs(t *testing.T) {
	ctx := context.Background()
	me, host, thief := deterministicSigner(t, 160), deterministicSigner(t, 161), deterministicSigner(t, 162)
	now := t0.Add(time.Hour)
	l, err := Open(Config{Signer: me, Now: func() time.Time { return now }, ContractCheck: agreedOnly})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	real := Contract{InstanceID: "web", Requester: me.ID(), Provider: host.ID(), Epoch: 3, Auction: "agreed",
		SliceNanos: int64(time.Minute), StartNanos: t0.UnixNano()}
	hw := newLogWriter(host, t0)
	tw := newLogWriter(thief, t0)
	forged := real
	forged.Provider, forged.Auction = thief.ID(), ""
	fe := tw.next(t, forged)
	end := tw.next(t, End{Contract: fe.id, AtNanos: t0.Add(time.Minute).UnixNano(), State: EndStopped})
	if _, err := l.Ingest(ctx, rawsOf([]*Entry{hw.next(t, real), fe, end})); err != nil {
		t.Fatal(err)
	}
	if l.Ended("web", 3, now) {
		t.Fatal("a forged contract's end counts as the end of this node's contract")
	}
	if ok, err := l.EndSpan(ctx, "web", 3, t0.Add(2*time.Minute), EndStopped, "stop"); err != nil || !ok || !l.Ended("web", 3, now) {
		t.Fatalf("the node's own end: ok %v err %v", ok, err)
	}
}

// TestRequesterCannotFenceRetroactivelyOverItsAcks: a requester (with a
// provider of its own, or itself) signs a newer epoch's contract dated back
// before slices it acknowledged under the older one. Those receipts must
// not become fenced problems pinned on the honest older provider: the
// requester's own acks say they were served and owed.
func TestRequesterCannotFenceRetroactivelyOverItsAcks(t *testing.T) {
	m := newMarket(t, 164)
	es := []*Entry{m.ce}
	var receipts []*Entry
	for i := 0; i < 3; i++ {
		re := m.receipt(t, Usage{CPUMicros: 1000})
		receipts = append(receipts, re)
		es = append(es, re, m.ack(t, re))
	}
	c2 := m.c
	c2.Epoch, c2.Provider = 2, m.req.ID() // the requester hosts it itself, from the old start
	es = append(es, m.rw.next(t, c2))
	r := Audit(setOf(es...), AuditOptions{})
	for _, re := range receipts {
		if hasCode(codesFor(r, re), CodeFenced) {
			t.Fatalf("an acknowledged receipt is fenced by the requester's backdated newer epoch: %+v", r.Problems)
		}
	}
	// Unacknowledged, a receipt after the newer epoch began is fenced.
	late := m.receipt(t, Usage{CPUMicros: 1000})
	if !hasCode(codesFor(Audit(setOf(append(es, late)...), AuditOptions{}), late), CodeFenced) {
		t.Fatal("an unacknowledged receipt after a newer epoch began is not fenced")
	}
}

// TestRequesterDoesNotAckASliceBeforeItEnds: the clock-skew bound lets a
// receipt be entered up to MaxClockSkew before its period ends (30 slices
// ahead at one-second slices). The requester must not acknowledge it
// before the slice has ended by its own clock: until then it cannot know
// the slice was served (a stop or a failure may still come).
func TestRequesterDoesNotAckASliceBeforeItEnds(t *testing.T) {
	ctx := context.Background()
	req, prov := deterministicSigner(t, 170), deterministicSigner(t, 171)
	now := t0.Add(5 * time.Second)
	lr, err := Open(Config{Signer: req, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	defer lr.Close()
	pw := newLogWriter(prov, t0)
	c := Contract{InstanceID: "ahead", Requester: req.ID(), Provider: prov.ID(), Epoch: 1, Price: Price{CPU: 1000},
		SliceNanos: int64(time.Second), StartNanos: t0.UnixNano()}
	ce := pw.next(t, c)
	from, to := c.SliceBounds(20) // ends 16 s after now, within the skew bound
	r := MakeReceipt(ce.id, c, 20, from, to, Usage{CPUMicros: 10})
	pw.now = now
	re, err := NewEntry(2, ce.id, now, r)
	if err != nil {
		t.Fatal(err)
	}
	if err := prov.Sign(re); err != nil {
		t.Fatal(err)
	}
	if _, err := lr.Ingest(ctx, rawsOf([]*Entry{ce, re})); err != nil {
		t.Fatal(err)
	}
	b := NewBiller(lr, nil, nil, BillerConfig{})
	b.Tick(ctx, now)
	answered := func() int {
		n := 0
		lr.View(func(s *Set) { n = len(s.AcksOf(re.id)) + len(s.DisputesOf(re.id)) })
		return n
	}
	if n := answered(); n != 0 {
		t.Fatalf("the requester answered a receipt for a slice that ends in %s", time.Duration(to-now.UnixNano()))
	}
	now = time.Unix(0, to).Add(time.Millisecond)
	b.Tick(ctx, now)
	if n := answered(); n != 1 {
		t.Fatalf("%d answers once the slice ended, want 1", n)
	}
}

// TestSplitsRefusedSecondCopyIsNoOverlap: during a split the requester's
// side keeps (and pays) the older copy while guardians on the other side
// place a newer one, whose receipts for the same slices the requester then
// refuses as already paid. Each slice is paid once: the audit reports no
// overlap for it, while the same slice billed under two epochs and not
// refused is one, and a provider's second bill of its own slice stays one
// even when refused.
func TestSplitsRefusedSecondCopyIsNoOverlap(t *testing.T) {
	m := newMarket(t, 170)
	prov2 := deterministicSigner(t, 172)
	w2 := newLogWriter(prov2, t0)
	w2.clock = m.pw.clock
	old := m.receipt(t, Usage{CPUMicros: 1000})
	es := []*Entry{m.ce, old, m.ack(t, old)}
	c2 := m.c
	c2.Epoch, c2.Provider = 2, prov2.ID()
	ce2 := w2.next(t, c2)
	lo, hi := c2.SliceBounds(0)
	second := w2.next(t, MakeReceipt(ce2.id, c2, 0, lo, hi, Usage{CPUMicros: 1000}))
	es = append(es, ce2, second)
	if r := Audit(setOf(es...), AuditOptions{}); !hasCode(codesFor(r, second), CodeOverlap) && !hasCode(codesFor(r, old), CodeOverlap) {
		t.Fatalf("one slice billed under two epochs, neither refused, is no overlap: %+v", r.Problems)
	}
	refused := m.rw.next(t, Dispute{Receipt: second.id, Reason: "already paid"})
	es = append(es, refused)
	r := Audit(setOf(es...), AuditOptions{})
	if hasCode(codesFor(r, second), CodeOverlap) || hasCode(codesFor(r, old), CodeOverlap) {
		t.Fatalf("a slice paid once (the newer copy's bill refused) is reported billed twice: %+v", r.Problems)
	}
	again := m.pw.next(t, MakeReceipt(m.ce.id, m.c, 0, lo+1, hi, Usage{CPUMicros: 1000}))
	es = append(es, again, m.rw.next(t, Dispute{Receipt: again.id, Reason: "billed twice"}))
	if !hasCode(codesFor(Audit(setOf(es...), AuditOptions{}), again), CodeOverlap) {
		t.Fatal("a provider's second bill of its own slice, refused, is no longer an overlap")
	}
}
