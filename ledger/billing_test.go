package ledger

import (
	"context"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// TestReceiptAmountIsPriceTimesUsage bills one-second slices of a lightly
// loaded instance at the market's default prices: the amount is not
// rounded away, equals price × usage exactly, shows in the statement, and
// the audit recomputes it (a receipt with another amount is a problem).
func TestReceiptAmountIsPriceTimesUsage(t *testing.T) {
	ctx := context.Background()
	req, prov := deterministicSigner(t, 90), deterministicSigner(t, 91)
	now := t0.Add(3500 * time.Millisecond)
	clock := func() time.Time { return now }
	lp, _ := Open(Config{Signer: prov, Now: clock})
	defer lp.Close()
	lr, _ := Open(Config{Signer: req, Now: clock})
	defer lr.Close()
	// 1000 µcr per core-hour, 500 per GiB-hour, 10 per disk GiB-hour.
	c := Contract{InstanceID: "web", Requester: req.ID(), Provider: prov.ID(), Epoch: 1, Price: Price{CPU: 1000, Mem: 500, Disk: 10},
		SliceNanos: int64(time.Second), StartNanos: t0.UnixNano()}
	ce, err := lp.AppendContract(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	// A small web server: 2 ms of CPU, 1.8 MB resident, 12 KB on disk per second.
	u := Usage{CPUMicros: 2_000, MemByteSeconds: 1_817_039, MemPeakBytes: 2 << 20, DiskByteSeconds: 12_288}
	NewBiller(lp, &fakeUsage{u: u}, nil, BillerConfig{}).Tick(ctx, now)
	var receipts []*Entry
	lp.View(func(s *Set) { receipts = s.ReceiptsOf(ce.CID()) })
	if len(receipts) != 3 {
		t.Fatalf("%d receipts for 3 complete one-second slices", len(receipts))
	}
	want := amountRef(c.Price, u)
	for _, re := range receipts {
		r := re.Value().(Receipt)
		if r.Usage != u {
			t.Fatalf("receipt usage %+v, want %+v", r.Usage, u)
		}
		if r.Amount == 0 || !want.IsUint64() || r.Amount != want.Uint64() {
			t.Fatalf("receipt amount %d pcr, want price × usage = %s (non-zero)", r.Amount, want)
		}
	}
	if _, err := lr.Ingest(ctx, rawsOf(setEntries(lp))); err != nil {
		t.Fatal(err)
	}
	NewBiller(lr, nil, nil, BillerConfig{}).Tick(ctx, now)
	rep := lr.Audit()
	if !rep.OK || rep.Acked != 3 || rep.AckedAmount != 3*want.Uint64() {
		t.Fatalf("audit: ok %v acked %d amount %d problems %+v", rep.OK, rep.Acked, rep.AckedAmount, rep.Problems)
	}
	st := lr.Statement(RoleRequester, req.ID(), time.Time{}, time.Time{}, 0)
	if st.Total.Receipts != 3 || st.Total.Acked != 3*want.Uint64() || st.Total.Acked == 0 {
		t.Fatalf("statement total %+v, want 3 receipts acked for %d", st.Total, 3*want.Uint64())
	}
	var tbl strings.Builder
	// The table shows credits with CreditDecimals decimals (the exact
	// pico-credits are in JSON and CSV).
	if err := WriteTable(&tbl, st); err != nil || !strings.Contains(tbl.String(), Credits(3*want.Uint64())) {
		t.Fatalf("table does not show the total %s:\n%s", Credits(3*want.Uint64()), tbl.String())
	}
	// The audit recomputes the amount: one pico-credit more is a problem.
	from, to := c.SliceBounds(3)
	bad := MakeReceipt(ce.CID(), c, 3, from, to, u)
	bad.Amount++
	be, err := lp.Append(ctx, bad)
	if err != nil {
		t.Fatal(err)
	}
	var found bool
	for _, p := range lp.Audit().Problems {
		found = found || (p.CID == be.CID().String() && p.Code == CodeWrongAmount)
	}
	if !found {
		t.Fatalf("audit did not flag amount %d ≠ price × usage %s", bad.Amount, want)
	}
}

// fakeReach answers per slice from a table (default: reachable) and
// records what it was asked.
type fakeReach struct {
	mu       sync.Mutex
	verdicts map[uint64]Reach
	asked    []peer.ID
}

func (f *fakeReach) Reachable(r Receipt, provider peer.ID) (Reach, string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.asked = append(f.asked, provider)
	v, ok := f.verdicts[r.Slice]
	if !ok {
		return Reachable, ""
	}
	if v == Unreachable {
		return v, "provider not alive in the membership"
	}
	return v, ""
}

func TestBillerDisputesUnreachableInstances(t *testing.T) {
	ctx := context.Background()
	req, prov := deterministicSigner(t, 92), deterministicSigner(t, 93)
	now := t0.Add(3500 * time.Millisecond)
	clock := func() time.Time { return now }
	lp, _ := Open(Config{Signer: prov, Now: clock})
	defer lp.Close()
	lr, _ := Open(Config{Signer: req, Now: clock})
	defer lr.Close()
	c := Contract{InstanceID: "web", Requester: req.ID(), Provider: prov.ID(), Epoch: 1, Price: Price{CPU: 3600},
		SliceNanos: int64(time.Second), StartNanos: t0.UnixNano()}
	if _, err := lp.AppendContract(ctx, c); err != nil {
		t.Fatal(err)
	}
	NewBiller(lp, &fakeUsage{u: Usage{CPUMicros: 1000}}, nil, BillerConfig{}).Tick(ctx, now)
	if _, err := lr.Ingest(ctx, rawsOf(setEntries(lp))); err != nil {
		t.Fatal(err)
	}
	reach := &fakeReach{verdicts: map[uint64]Reach{1: Unreachable, 2: ReachUnknown}}
	br := NewBiller(lr, nil, reach, BillerConfig{})
	br.Tick(ctx, now)
	status := func() map[uint64]string {
		out := map[uint64]string{}
		for _, l := range lr.Statement(RoleRequester, req.ID(), time.Time{}, time.Time{}, 0).Lines {
			out[l.Slice] = l.Status
		}
		return out
	}
	if s := status(); s[0] != StatusAcked || s[1] != StatusDisputed || s[2] != StatusUnconfirmed {
		t.Fatalf("statuses %v: want slice 0 acked, 1 disputed, 2 unconfirmed (unknown reachability waits)", s)
	}
	rep := lr.Audit()
	if !rep.OK || len(rep.Disputed) != 1 || !strings.Contains(rep.Disputed[0].Reason, "provider not alive") {
		t.Fatalf("audit ok %v disputed %+v problems %+v", rep.OK, rep.Disputed, rep.Problems)
	}
	for _, p := range reach.asked {
		if p != prov.ID() {
			t.Fatalf("reachability asked about provider %s, want the contract's %s", p, prov.ID())
		}
	}
	// Once the verdict is known the waiting receipt is answered.
	reach.mu.Lock()
	delete(reach.verdicts, 2)
	reach.mu.Unlock()
	br.Tick(ctx, now)
	if s := status(); s[2] != StatusAcked || s[1] != StatusDisputed {
		t.Fatalf("statuses after the verdict: %v", s)
	}
}

// A provider cut off from the grid while the instance is re-placed under a
// newer epoch: with RequireSync it bills nothing while cut off, and once an
// exchange brings the newer contract, nothing past the newer epoch's start.
// Without the gate, the same provider bills fenced, overlapping slices.
func TestCutOffProviderBillsNothingPastNewerEpoch(t *testing.T) {
	for _, gate := range []bool{true, false} {
		ctx := context.Background()
		req, prov, next := deterministicSigner(t, 94), deterministicSigner(t, 95), deterministicSigner(t, 96)
		now := t0.Add(5500 * time.Millisecond)
		clock := func() time.Time { return now }
		lp, _ := Open(Config{Signer: prov, Now: clock})
		defer lp.Close()
		lr, _ := Open(Config{Signer: req, Now: clock})
		defer lr.Close()
		c1 := Contract{InstanceID: "web", Requester: req.ID(), Provider: prov.ID(), Epoch: 1, Price: Price{CPU: 3600},
			SliceNanos: int64(time.Second), StartNanos: t0.UnixNano()}
		if _, err := lp.AppendContract(ctx, c1); err != nil {
			t.Fatal(err)
		}
		// Cut off: the requester re-places the instance at 3 s under epoch 2.
		c2 := c1
		c2.Provider, c2.Epoch, c2.StartNanos = next.ID(), 2, t0.Add(3*time.Second).UnixNano()
		if _, err := lr.AppendContract(ctx, c2); err != nil {
			t.Fatal(err)
		}
		b := NewBiller(lp, &fakeUsage{u: Usage{CPUMicros: 1000}}, nil, BillerConfig{RequireSync: gate})
		b.Tick(ctx, now)
		receipts := func() int { n := 0; lp.View(func(s *Set) { n = s.Receipts() }); return n }
		if gate && receipts() != 0 {
			t.Fatalf("a provider that never synced billed %d receipts", receipts())
		}
		// Back on the wire: one exchange with the requester.
		a, bb := net.Pipe()
		done := make(chan error, 1)
		go func() { _, err := lr.ServeSync(ctx, bb); bb.Close(); done <- err }()
		if _, err := lp.Sync(ctx, a); err != nil {
			t.Fatal(err)
		}
		a.Close()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if gate && !lp.LastSync().Equal(now) {
			t.Fatalf("last sync %v, want %v", lp.LastSync(), now)
		}
		b.Tick(ctx, now)
		// Merge everything and audit.
		if _, err := lr.Ingest(ctx, rawsOf(setEntries(lp))); err != nil {
			t.Fatal(err)
		}
		rep := lr.Audit()
		fenced := 0
		for _, p := range rep.Problems {
			if p.Code == CodeFenced || p.Code == CodeOverlap {
				fenced++
			}
		}
		if gate && (!rep.OK || receipts() != 3) {
			t.Fatalf("with the sync gate: %d receipts (want slices 0-2), problems %+v", receipts(), rep.Problems)
		}
		if !gate && fenced == 0 {
			t.Fatalf("without the gate the cut-off provider should bill past epoch 2 (control); receipts %d", receipts())
		}
	}
}
