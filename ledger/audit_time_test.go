package ledger

import (
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// forge signs a receipt for slice i of m's contract at the provider's
// current time, whatever the slice (a provider billing ahead of time).
func (m *market) forge(tb testing.TB, i uint64, u Usage) *Entry {
	tb.Helper()
	from, to := m.c.SliceBounds(i)
	r := Receipt{Contract: m.ce.CID(), InstanceID: m.c.InstanceID, Epoch: m.c.Epoch, Slice: i, FromNanos: from, ToNanos: to, Usage: u, Amount: Amount(m.c.Price, u)}
	m.pw.seq++
	m.pw.now = m.pw.now.Add(time.Millisecond)
	e, err := NewEntry(m.pw.seq, m.pw.prev, m.pw.now, r)
	if err != nil {
		tb.Fatal(err)
	}
	if err := m.pw.s.Sign(e); err != nil {
		tb.Fatal(err)
	}
	m.pw.prev = e.id
	return e
}

func TestForgedFutureReceiptIsRefusedAndReported(t *testing.T) {
	m := newMarket(t, 40)
	good := m.receipt(t, Usage{CPUMicros: 10})
	future := m.forge(t, 351, Usage{CPUMicros: 10}) // slice 351 billed at slice 1
	s := setOf(m.ce, good, future)
	now := m.pw.now
	if err := CheckReceiptAt(s, good, now); err != nil {
		t.Fatalf("good receipt refused: %v", err)
	}
	err := CheckReceiptAt(s, future, now)
	if err == nil || !strings.Contains(err.Error(), CodeNotEnded) || !errors.Is(err, ErrInvalid) {
		t.Fatalf("future receipt: %v, want %s", err, CodeNotEnded)
	}
	r := Audit(s, AuditOptions{Now: now})
	if r.OK || !hasCode(codesFor(r, future), CodeNotEnded) || len(codesFor(r, good)) != 0 {
		t.Fatalf("audit: %+v", r.Problems)
	}
	// Still reported once the slice is long past: the entry's own time
	// says it was written before its period ended.
	r = Audit(s, AuditOptions{Now: now.Add(24 * time.Hour)})
	if !hasCode(codesFor(r, future), CodeNotEnded) {
		t.Fatalf("audit a day later: %+v", r.Problems)
	}
	// A receipt dated as the slice ends is fine within the skew bound, and
	// not beyond it.
	m2 := newMarket(t, 42)
	m2.pw.now = time.Unix(0, m2.c.StartNanos+m2.c.SliceNanos).Add(-MaxClockSkew / 2)
	early := m2.forge(t, 0, Usage{CPUMicros: 1})
	if err := CheckReceiptAt(setOf(m2.ce, early), early, m2.pw.now); err != nil {
		t.Fatalf("receipt within the skew bound refused: %v", err)
	}
	m2.pw.now = time.Unix(0, m2.c.StartNanos+2*m2.c.SliceNanos).Add(-2 * MaxClockSkew)
	tooEarly := m2.forge(t, 1, Usage{CPUMicros: 1})
	if err := CheckReceiptAt(setOf(m2.ce, tooEarly), tooEarly, m2.pw.now); err == nil {
		t.Fatal("receipt beyond the skew bound acknowledged")
	}
}

func TestOverCapReceiptIsRefusedAndReported(t *testing.T) {
	m := newMarket(t, 44)
	from, to := m.c.SliceBounds(0)
	u := Usage{CPUMicros: 1_000_000_000_000_000} // 10^15 µs in a one-minute slice
	over := m.pw.next(t, Receipt{Contract: m.ce.CID(), InstanceID: m.c.InstanceID, Epoch: 1, Slice: 0, FromNanos: from, ToNanos: to, Usage: u, Amount: Amount(m.c.Price, u)})
	s := setOf(m.ce, over)
	if err := CheckReceiptAt(s, over, m.pw.now); err == nil || !strings.Contains(err.Error(), CodeOverCaps) {
		t.Fatalf("over-cap receipt: %v", err)
	}
	if r := Audit(s, AuditOptions{Now: m.pw.now}); !hasCode(codesFor(r, over), CodeOverCaps) {
		t.Fatalf("audit: %+v", r.Problems)
	}
}

func TestReceiptAfterStopIsRefusedAndReported(t *testing.T) {
	m := newMarket(t, 46)
	r0 := m.receipt(t, Usage{CPUMicros: 10})
	// The requester stops the instance during slice 1.
	stopAt := m.c.StartNanos + m.c.SliceNanos + m.c.SliceNanos/2
	end := m.rw.next(t, End{Contract: m.ce.CID(), AtNanos: stopAt, State: EndStopped})
	partial := m.receipt(t, Usage{CPUMicros: 10}) // slice 1: the stop's slice, still billable
	after := m.receipt(t, Usage{CPUMicros: 10})   // slice 2: after the stop
	s := setOf(m.ce, r0, end, partial, after)
	now := m.pw.now
	if err := CheckReceiptAt(s, partial, now); err != nil {
		t.Fatalf("partial slice refused: %v", err)
	}
	if err := CheckReceiptAt(s, after, now); err == nil || !strings.Contains(err.Error(), CodeAfterEnd) {
		t.Fatalf("receipt after stop: %v", err)
	}
	r := Audit(s, AuditOptions{Now: now.Add(time.Hour)})
	if !hasCode(codesFor(r, after), CodeAfterEnd) || len(codesFor(r, partial)) != 0 || len(codesFor(r, end)) != 0 {
		t.Fatalf("audit: %+v", r.Problems)
	}
	// The span ended in slice 1: nothing after it is unbilled, an hour later.
	if r.Unbilled != 0 {
		t.Fatalf("unbilled %d after the stop: %+v", r.Unbilled, r.UnbilledContracts)
	}
	// An End by a stranger ends nothing and is listed as ignored.
	stranger := newLogWriter(deterministicSigner(t, 98), t0)
	fake := stranger.next(t, End{Contract: m.ce.CID(), AtNanos: m.c.StartNanos + 1, State: EndFailed})
	s.Add(fake)
	r = Audit(s, AuditOptions{Now: now})
	if !hasCode(ignoredFor(r, fake), CodeBadEnd) || len(codesFor(r, fake)) != 0 || hasCode(codesFor(r, r0), CodeAfterEnd) {
		t.Fatalf("stranger's end: %+v", r.Problems)
	}
	if _, err := NewEntry(1, cidUndef(), t0, End{Contract: m.ce.CID(), AtNanos: 1, State: "paused"}); err == nil {
		t.Fatal("end with an unknown state accepted")
	}
}

// TestStopEndsBillingProperty is a property of the span a stop ends: the
// requester's end (a bound, set when it asked for the stop) and its host's
// end (when it stopped the instance; late, early or missing), in any
// order: the earliest counts. A receipt for a slice that begins at or after
// it is refused by the requester and reported by the audit, the slice it
// falls in (the partial last one) is not, and no slice after it counts as
// unbilled.
func TestStopEndsBillingProperty(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 13))
	for round := 0; round < 60; round++ {
		m := newMarket(t, byte(100+round%20))
		sl := m.c.SliceNanos
		stop := m.c.StartNanos + rng.Int64N(10*sl)
		var ends []any
		earliest := int64(0)
		if rng.IntN(4) != 0 {
			at := stop + rng.Int64N(2*sl)
			ends = append(ends, End{Contract: m.ce.CID(), AtNanos: at, State: EndStopped})
			earliest = at
		}
		hostAt := stop + rng.Int64N(sl)
		hostEnd := rng.IntN(3) != 0
		if hostEnd && (earliest == 0 || hostAt < earliest) {
			earliest = hostAt
		}
		if earliest == 0 {
			ends = append(ends, End{Contract: m.ce.CID(), AtNanos: stop, State: EndStopped})
			earliest = stop
		}
		es := []*Entry{m.ce}
		for _, e := range ends {
			es = append(es, m.rw.next(t, e))
		}
		if hostEnd {
			es = append(es, m.pw.next(t, End{Contract: m.ce.CID(), AtNanos: hostAt, State: EndStopped}))
		}
		// Every slice that began before the end, and up to 3 more, is
		// billed (honestly or not).
		n := int((earliest-m.c.StartNanos+sl-1)/sl) + rng.IntN(4)
		var receipts []*Entry
		for i := 0; i < n; i++ {
			m.nextReceipt = uint64(i)
			receipts = append(receipts, m.receipt(t, Usage{CPUMicros: 1}))
		}
		bare := append([]*Entry(nil), es...)
		es = append(es, receipts...)
		rng.Shuffle(len(es)-1, func(i, j int) { es[i+1], es[j+1] = es[j+1], es[i+1] })
		s := setOf(es...)
		now := m.pw.now.Add(time.Hour)
		r := Audit(s, AuditOptions{Now: now})
		for i, re := range receipts {
			from, _ := m.c.SliceBounds(uint64(i))
			refused := CheckReceiptAt(s, re, now) != nil
			reported := hasCode(codesFor(r, re), CodeAfterEnd)
			if want := from >= earliest; refused != want || reported != want {
				t.Fatalf("round %d: slice %d from %d, span ends %d: refused %v, reported %v, want %v", round, i, from, earliest, refused, reported, want)
			}
		}
		if r.Unbilled != 0 {
			t.Fatalf("round %d: unbilled %d with every slice up to the stop billed: %+v", round, r.Unbilled, r.UnbilledContracts)
		}
		// Without the receipts, exactly the slices that began before the
		// end are unbilled.
		s2 := setOf(bare...)
		want := (earliest - m.c.StartNanos + sl - 1) / sl
		if r2 := Audit(s2, AuditOptions{Now: now}); r2.Unbilled != want {
			t.Fatalf("round %d: unbilled %d, want %d (span ends %d slices in)", round, r2.Unbilled, want, (earliest-m.c.StartNanos)/sl)
		}
	}
}

func TestUnbilledAndLateSlices(t *testing.T) {
	m := newMarket(t, 48)
	es := []*Entry{m.ce}
	// Slices 0..9 end; 3 and 7 are never billed; 9 is billed 2 minutes late.
	for i := uint64(0); i < 9; i++ {
		m.nextReceipt = i
		if i == 3 || i == 7 {
			continue
		}
		es = append(es, m.receipt(t, Usage{CPUMicros: 1}))
	}
	_, end9 := m.c.SliceBounds(9)
	m.pw.now = time.Unix(0, end9).Add(2 * time.Minute)
	m.nextReceipt = 9
	late := m.receipt(t, Usage{CPUMicros: 1})
	es = append(es, late)
	s := setOf(es...)
	now := time.Unix(0, end9).Add(3 * time.Minute) // slices 10, 11, 12 ended too
	r := Audit(s, AuditOptions{Now: now})
	// 0..11 ended ≥ grace ago: 12 due, 8 billed (3, 7, 10, 11 not).
	if r.Unbilled != 4 || len(r.UnbilledContracts) != 1 || r.UnbilledContracts[0].First != 3 || r.Late != 1 {
		t.Fatalf("unbilled %d %+v late %d", r.Unbilled, r.UnbilledContracts, r.Late)
	}
	if r.DueSlices != 12 || r.BilledOnce != 8 {
		t.Fatalf("due %d, billed once %d; want 12 and 8", r.DueSlices, r.BilledOnce)
	}
	// Within the grace, the current slices do not count.
	r = Audit(s, AuditOptions{Now: time.Unix(0, end9).Add(BillingGrace / 2)})
	if r.Unbilled != 2 {
		t.Fatalf("unbilled within grace %d, want 2", r.Unbilled)
	}
	// Without a time, nothing is counted.
	if r := Audit(s, AuditOptions{}); r.Unbilled != 0 || r.UnbilledContracts == nil {
		t.Fatalf("unbilled without now: %d %v", r.Unbilled, r.UnbilledContracts)
	}
	// A newer epoch from slice 11 on ends the old contract's span there.
	c2 := m.c
	c2.Epoch, c2.StartNanos = 2, m.c.StartNanos+11*m.c.SliceNanos
	s.Add(m.rw.next(t, c2))
	r = Audit(s, AuditOptions{Now: now})
	var old int64
	for _, u := range r.UnbilledContracts {
		if u.Epoch == 1 {
			old = u.Slices
		}
	}
	if old != 3 { // 3, 7, 10
		t.Fatalf("old epoch's unbilled %d: %+v", old, r.UnbilledContracts)
	}
}

// TestUnbilledCountsGaps is a property: whatever slices a provider bills,
// the unbilled count is the number of ended slices (past the grace) of the
// span it did not bill.
func TestUnbilledCountsGaps(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	for round := 0; round < 50; round++ {
		m := newMarket(t, byte(60+round%30))
		n := 1 + rng.IntN(40)
		es := []*Entry{m.ce}
		billed := 0
		for i := 0; i < n; i++ {
			if rng.IntN(3) == 0 {
				continue
			}
			m.nextReceipt = uint64(i)
			es = append(es, m.receipt(t, Usage{CPUMicros: uint64(rng.IntN(60_000))}))
			billed++
		}
		_, end := m.c.SliceBounds(uint64(n - 1))
		now := time.Unix(0, end).Add(BillingGrace)
		var stopped bool
		if rng.IntN(2) == 0 {
			stopped = true
			es = append(es, m.rw.next(t, End{Contract: m.ce.CID(), AtNanos: end - 1, State: EndDestroyed}))
			now = now.Add(time.Hour)
		}
		r := Audit(setOf(es...), AuditOptions{Now: now})
		if want := int64(n - billed); r.Unbilled != want {
			t.Fatalf("round %d: %d slices, %d billed, stopped %v: unbilled %d, want %d", round, n, billed, stopped, r.Unbilled, want)
		}
		if !r.OK {
			t.Fatalf("round %d: %+v", round, r.Problems)
		}
	}
}

func TestStrangerGrantsCountNowhere(t *testing.T) {
	founder, stranger, p := deterministicSigner(t, 50), deterministicSigner(t, 51), deterministicSigner(t, 52)
	fw, sw := newLogWriter(founder, t0), newLogWriter(stranger, t0)
	good := fw.next(t, Grant{To: p.ID(), Amount: 5 * PicoPerCredit})
	mint := sw.next(t, Grant{To: stranger.ID(), Amount: 999_999 * PicoPerCredit})
	s := setOf(good, mint)
	if b := BalanceOf(s, stranger.ID(), []peer.ID{founder.ID()}); b.Granted != 0 || b.Balance != 0 {
		t.Fatalf("stranger's self-grant counted: %+v", b)
	}
	if b := BalanceOf(s, p.ID(), []peer.ID{founder.ID()}); b.Granted != 5*PicoPerCredit {
		t.Fatalf("founder's grant: %+v", b)
	}
	// No granters configured (a public node by default): no grant counts.
	if b := BalanceOf(s, p.ID(), nil); b.Granted != 0 {
		t.Fatalf("grant counted without granters: %+v", b)
	}
	r := Audit(s, AuditOptions{Granters: []peer.ID{founder.ID()}})
	if !r.OK || len(r.UnauthorizedGrants) != 1 || r.UnauthorizedGrants[0] != mint.CID().String() {
		t.Fatalf("audit: ok %v unauthorized %v problems %+v", r.OK, r.UnauthorizedGrants, r.Problems)
	}
}
