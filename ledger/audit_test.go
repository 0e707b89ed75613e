package ledger

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"
	"time"
)

func codesFor(r Report, e *Entry) []string {
	var out []string
	for _, p := range r.Problems {
		if p.CID == e.CID().String() {
			out = append(out, p.Code)
		}
	}
	return out
}

// ignoredFor returns the codes of what is wrong with e, when the audit
// ignored it (no standing).
func ignoredFor(r Report, e *Entry) []string {
	var out []string
	for _, p := range r.Ignored {
		if p.CID == e.CID().String() {
			out = append(out, p.Code)
		}
	}
	return out
}

func hasCode(codes []string, c string) bool {
	for _, x := range codes {
		if x == c {
			return true
		}
	}
	return false
}

func TestAuditCleanLedger(t *testing.T) {
	m := newMarket(t, 20)
	es := []*Entry{m.ce}
	for i := 0; i < 3; i++ {
		r := m.receipt(t, Usage{CPUMicros: 2000, MemByteSeconds: 60 << 30})
		es = append(es, r, m.ack(t, r))
	}
	unacked := m.receipt(t, Usage{CPUMicros: 1})
	es = append(es, unacked)
	r := Audit(setOf(es...), AuditOptions{})
	if !r.OK || r.Entries != len(es) || r.Receipts != 4 || r.Acked != 3 {
		t.Fatalf("report %+v", r)
	}
	if len(r.Unconfirmed) != 1 || r.Unconfirmed[0] != unacked.CID().String() {
		t.Fatalf("unconfirmed %v", r.Unconfirmed)
	}
	want := 3 * Amount(m.c.Price, Usage{CPUMicros: 2000, MemByteSeconds: 60 << 30})
	if r.AckedAmount != want {
		t.Fatalf("acked amount %d want %d", r.AckedAmount, want)
	}
}

func TestAuditFindsBadReceipts(t *testing.T) {
	m := newMarket(t, 22)
	good := m.receipt(t, Usage{CPUMicros: 1000})
	from, to := m.c.SliceBounds(1)
	wrongAmount := m.pw.next(t, Receipt{Contract: m.ce.CID(), InstanceID: m.c.InstanceID, Epoch: 1, Slice: 1, FromNanos: from, ToNanos: to, Usage: Usage{CPUMicros: 1000}, Amount: 7})
	from, to = m.c.SliceBounds(2)
	overCaps := m.pw.next(t, Receipt{Contract: m.ce.CID(), InstanceID: m.c.InstanceID, Epoch: 1, Slice: 2, FromNanos: from, ToNanos: to,
		Usage: Usage{CPUMicros: 999_999}, Amount: Amount(m.c.Price, Usage{CPUMicros: 999_999})})
	// Slice 0 billed twice.
	f0, t0_ := m.c.SliceBounds(0)
	twice := m.pw.next(t, Receipt{Contract: m.ce.CID(), InstanceID: m.c.InstanceID, Epoch: 1, Slice: 0, FromNanos: f0, ToNanos: t0_, Usage: Usage{CPUMicros: 1}, Amount: Amount(m.c.Price, Usage{CPUMicros: 1})})
	// A newer epoch begins at slice 5; the old provider bills slice 6.
	c2 := m.c
	c2.Epoch, c2.StartNanos = 2, m.c.StartNanos+5*m.c.SliceNanos
	newer := m.rw.next(t, c2)
	f6, t6 := m.c.SliceBounds(6)
	fenced := m.pw.next(t, Receipt{Contract: m.ce.CID(), InstanceID: m.c.InstanceID, Epoch: 1, Slice: 6, FromNanos: f6, ToNanos: t6, Usage: Usage{CPUMicros: 1}, Amount: Amount(m.c.Price, Usage{CPUMicros: 1})})
	// Ack by the wrong party and with the wrong amount.
	badAck := m.pw.next(t, Ack{Receipt: good.CID(), Amount: 1})
	// Receipt by someone else than the provider, for an unknown contract.
	stranger := newLogWriter(deterministicSigner(t, 99), t0)
	unknown := stranger.next(t, Receipt{Contract: CIDOf([]byte("no such contract")), InstanceID: "x", Slice: 0, FromNanos: 1, ToNanos: 2})

	r := Audit(setOf(m.ce, good, wrongAmount, overCaps, twice, newer, fenced, badAck, unknown), AuditOptions{})
	if r.OK {
		t.Fatal("audit ok")
	}
	for _, c := range []struct {
		e    *Entry
		code string
	}{{wrongAmount, CodeWrongAmount}, {overCaps, CodeOverCaps}, {fenced, CodeFenced}} {
		if codes := codesFor(r, c.e); !hasCode(codes, c.code) {
			t.Errorf("%s: codes %v, want %s", c.code, codes, c.code)
		}
	}
	// An ack by someone other than the requester, a receipt by someone
	// other than a provider: no standing, so ignored (listed), not problems.
	for _, c := range []struct {
		e    *Entry
		code string
	}{{badAck, CodeBadAck}, {unknown, CodeUnknownContract}} {
		if codes, ign := codesFor(r, c.e), ignoredFor(r, c.e); len(codes) != 0 || !hasCode(ign, c.code) {
			t.Errorf("%s: problems %v, ignored %v; want it ignored", c.code, codes, ign)
		}
	}
	if !hasCode(codesFor(r, twice), CodeOverlap) && !hasCode(codesFor(r, good), CodeOverlap) {
		t.Errorf("double billing of slice 0 not reported: %+v", r.Problems)
	}
	if codes := codesFor(r, good); hasCode(codes, CodeWrongAmount) || hasCode(codes, CodeFenced) {
		t.Errorf("good receipt flagged: %v", codes)
	}
	for _, p := range r.Problems {
		if p.CID == "" || p.Problem == "" {
			t.Errorf("problem without cid or text: %+v", p)
		}
	}
	// The requester's check agrees with the audit.
	s := setOf(m.ce, good, wrongAmount, newer, fenced)
	if err := CheckReceipt(s, good); err != nil {
		t.Errorf("good receipt refused: %v", err)
	}
	if err := CheckReceipt(s, wrongAmount); err == nil || !strings.Contains(err.Error(), CodeWrongAmount) {
		t.Errorf("wrong amount: %v", err)
	}
	if err := CheckReceipt(s, fenced); err == nil || !strings.Contains(err.Error(), CodeFenced) {
		t.Errorf("fenced: %v", err)
	}
}

// fakeUsage meters every instance at a constant rate.
type fakeUsage struct {
	mu    sync.Mutex
	calls int
	u     Usage
}

func (f *fakeUsage) Usage(id string, from, to time.Time) (Usage, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	return f.u, true, nil
}

func TestBillerReceiptsAcksAndDisputes(t *testing.T) {
	ctx := context.Background()
	req, prov := deterministicSigner(t, 30), deterministicSigner(t, 31)
	var mu sync.Mutex
	now := t0
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	lp, err := Open(Config{Signer: prov, Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	defer lp.Close()
	lr, err := Open(Config{Signer: req, Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	defer lr.Close()
	c := Contract{InstanceID: "i", Requester: req.ID(), Provider: prov.ID(), Epoch: 1, Price: Price{CPU: 1800}, Caps: Usage{CPUMicros: 5_000_000},
		SliceNanos: int64(10 * time.Second), StartNanos: t0.UnixNano()}
	ce, err := lp.AppendContract(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	src := &fakeUsage{u: Usage{CPUMicros: 9_000_000}} // above caps: clamped
	bp := NewBiller(lp, src, nil, BillerConfig{})
	br := NewBiller(lr, nil, nil, BillerConfig{})
	mu.Lock()
	now = t0.Add(35 * time.Second) // slices 0, 1, 2 complete
	mu.Unlock()
	bp.Tick(ctx, clock())
	var receipts []*Entry
	lp.View(func(s *Set) { receipts = append(receipts, s.ReceiptsOf(ce.CID())...) })
	if len(receipts) != 3 {
		t.Fatalf("%d receipts, want 3", len(receipts))
	}
	for _, re := range receipts {
		r := re.Value().(Receipt)
		// 5 CPU-s at 1800 µcr/core-h = 0.5 µcr/s: 2.5 µcr = 2,500,000 pcr.
		if r.Usage.CPUMicros != 5_000_000 || r.Amount != 2_500_000 {
			t.Fatalf("receipt %+v: want clamped usage 5000000 and amount 2500000", r)
		}
	}
	bp.Tick(ctx, clock()) // idempotent: nothing more
	if n := lp.Len(); n != 4 {
		t.Fatalf("second tick appended: %d entries", n)
	}
	// A bogus receipt from the provider (wrong amount) is disputed.
	from, to := c.SliceBounds(3)
	bogus, err := lp.Append(ctx, Receipt{Contract: ce.CID(), InstanceID: "i", Epoch: 1, Slice: 3, FromNanos: from, ToNanos: to, Usage: Usage{CPUMicros: 1}, Amount: 10_000})
	if err != nil {
		t.Fatal(err)
	}
	// Replicate to the requester, which answers.
	if _, err := lr.Ingest(ctx, rawsOf(setEntries(lp))); err != nil {
		t.Fatal(err)
	}
	br.Tick(ctx, clock())
	rep := lr.Audit()
	if rep.Acked != 3 || len(rep.Disputed) != 1 || rep.Disputed[0].Receipt != bogus.CID().String() {
		t.Fatalf("acked %d disputed %+v", rep.Acked, rep.Disputed)
	}
	bal := lr.Balance(req.ID())
	if bal.Spent != 7_500_000 || bal.Balance != -7_500_000 {
		t.Fatalf("requester balance %+v", bal)
	}
	if b := lr.Balance(prov.ID()); b.Earned != 7_500_000 || b.Balance != 7_500_000 {
		t.Fatalf("provider balance %+v", b)
	}
	st := lr.Statement(RoleRequester, req.ID(), time.Time{}, time.Time{}, 0)
	if len(st.Lines) != 4 || st.Total.Acked != 7_500_000 || st.Total.Disputed != 10_000 {
		t.Fatalf("statement %+v", st.Total)
	}
	var csv bytes.Buffer
	if err := WriteCSV(&csv, st); err != nil || strings.Count(csv.String(), "\n") != 5 {
		t.Fatalf("csv: %v\n%s", err, csv.String())
	}
	// A newer epoch fences the provider: no receipt for slices after it began.
	c2 := c
	c2.Epoch, c2.StartNanos = 2, t0.Add(45*time.Second).UnixNano()
	if _, err := lr.AppendContract(ctx, c2); err != nil {
		t.Fatal(err)
	}
	if _, err := lp.Ingest(ctx, rawsOf(setEntries(lr))); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	now = t0.Add(95 * time.Second)
	mu.Unlock()
	bp.Tick(ctx, clock())
	lp.View(func(s *Set) {
		for _, re := range s.ReceiptsOf(ce.CID()) {
			if r := re.Value().(Receipt); r.ToNanos > c2.StartNanos {
				t.Errorf("billed slice %d [%d,%d) after epoch 2 began at %d", r.Slice, r.FromNanos, r.ToNanos, c2.StartNanos)
			}
		}
	})
}

func setEntries(l *Ledger) []*Entry {
	var es []*Entry
	l.View(func(s *Set) { es = s.Entries() })
	return es
}

// Requester and provider both record the same agreement: the audit accepts
// it, and the provider bills under its own entry only.
func TestBothPartiesRecordTheContract(t *testing.T) {
	ctx := context.Background()
	req, prov := deterministicSigner(t, 70), deterministicSigner(t, 71)
	now := t0.Add(25 * time.Second)
	lp, _ := Open(Config{Signer: prov, Now: func() time.Time { return now }})
	defer lp.Close()
	c := Contract{InstanceID: "dup", Requester: req.ID(), Provider: prov.ID(), Epoch: 1, Price: Price{CPU: 1},
		SliceNanos: int64(10 * time.Second), StartNanos: t0.UnixNano()}
	mine, err := lp.AppendContract(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	theirs := newLogWriter(req, t0).next(t, c)
	if _, err := lp.AddVerified(ctx, []*Entry{theirs}); err != nil {
		t.Fatal(err)
	}
	NewBiller(lp, &fakeUsage{u: Usage{CPUMicros: 1000}}, nil, BillerConfig{}).Tick(ctx, now)
	lp.View(func(s *Set) {
		if n := len(s.ReceiptsOf(mine.CID())); n != 2 {
			t.Errorf("%d receipts under the provider's contract entry, want 2", n)
		}
		if n := len(s.ReceiptsOf(theirs.CID())); n != 0 {
			t.Errorf("%d receipts under the requester's copy, want 0", n)
		}
	})
	if r := lp.Audit(); !r.OK {
		t.Fatalf("audit: %+v", r.Problems)
	}
	// A different agreement for the same epoch is a fencing problem.
	c2 := c
	c2.Price.CPU = 2
	other := newLogWriter(req, t0.Add(time.Hour))
	other.seq, other.prev = theirs.Seq, theirs.CID()
	if _, err := lp.AddVerified(ctx, []*Entry{other.next(t, c2)}); err != nil {
		t.Fatal(err)
	}
	if r := lp.Audit(); r.OK {
		t.Fatal("two different contracts for one epoch passed the audit")
	}
}

func TestSelfHostedReceiptsAreAcknowledged(t *testing.T) {
	ctx := context.Background()
	me := deterministicSigner(t, 80)
	now := t0.Add(25 * time.Second)
	l, _ := Open(Config{Signer: me, Now: func() time.Time { return now }})
	defer l.Close()
	c := Contract{InstanceID: "self", Requester: me.ID(), Provider: me.ID(), Epoch: 1, Price: Price{CPU: 3600},
		SliceNanos: int64(10 * time.Second), StartNanos: t0.UnixNano()}
	if _, err := l.AppendContract(ctx, c); err != nil {
		t.Fatal(err)
	}
	b := NewBiller(l, &fakeUsage{u: Usage{CPUMicros: 1000}}, nil, BillerConfig{})
	b.Tick(ctx, now) // bills slices 0 and 1
	b.Tick(ctx, now) // answers them
	r := l.Audit()
	if !r.OK || r.Receipts != 2 || r.Acked != 2 {
		t.Fatalf("receipts %d acked %d problems %+v", r.Receipts, r.Acked, r.Problems)
	}
	if bal := l.Balance(me.ID()); bal.Balance != 0 || bal.Earned != 2000 || bal.Spent != 2000 {
		t.Fatalf("balance %+v", bal)
	}
}
