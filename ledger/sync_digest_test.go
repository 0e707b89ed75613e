package ledger

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"testing"
)

// syncRound runs one anti-entropy exchange: a initiates, b serves.
func syncRound(t *testing.T, a, b *Ledger) SyncStats {
	t.Helper()
	ctx := context.Background()
	c1, c2 := net.Pipe()
	served := make(chan error, 1)
	go func() { _, err := b.ServeSync(ctx, c2); c2.Close(); served <- err }()
	st, err := a.Sync(ctx, c1)
	c1.Close()
	if err != nil {
		t.Fatalf("sync: %v", err)
	}
	if err := <-served; err != nil {
		t.Fatalf("serve: %v", err)
	}
	return st
}

// syncUntilSame exchanges in both directions until an exchange reports
// equal digests (at most rounds times) and returns whether it did.
func syncUntilSame(t *testing.T, a, b *Ledger, rounds int) bool {
	t.Helper()
	for i := 0; i < rounds; i++ {
		x, y := a, b
		if i%2 == 1 {
			x, y = b, a
		}
		if syncRound(t, x, y).Same {
			return true
		}
	}
	return false
}

// Two replicas holding different entries of an honest author's log, with
// the same contiguous prefix, highest seq and count (the author's entries
// 4 and 6 were lost to one, 4 and 5 to the other): their heads are equal,
// so the old digest ended every exchange as "same" and they kept different
// roots for ever.
func TestSyncConvergesWhenHeadsMatchButGapsDiffer(t *testing.T) {
	ctx := context.Background()
	m := newMarket(t, 70)
	es := []*Entry{m.ce} // seq 1
	for i := 0; i < 6; i++ {
		es = append(es, m.receipt(t, Usage{CPUMicros: 5})) // seqs 2..7
	}
	x, y := memLedger(t, nil), memLedger(t, nil)
	if _, err := x.Ingest(ctx, rawsOf([]*Entry{es[0], es[1], es[2], es[4], es[6]})); err != nil { // 1,2,3,5,7
		t.Fatal(err)
	}
	if _, err := y.Ingest(ctx, rawsOf([]*Entry{es[0], es[1], es[2], es[5], es[6]})); err != nil { // 1,2,3,6,7
		t.Fatal(err)
	}
	if !syncUntilSame(t, x, y, 4) {
		t.Fatal("anti-entropy never reported the replicas in sync")
	}
	if !bytes.Equal(x.Root(), y.Root()) || x.Len() != 6 || y.Len() != 6 {
		t.Fatalf("after anti-entropy: %d and %d entries, roots equal=%v; want 6 each and one root",
			x.Len(), y.Len(), bytes.Equal(x.Root(), y.Root()))
	}
}

// An author that signs two different entries at the same seq and shows one
// to each replica: the heads are equal, so the replicas never exchanged
// them; neither saw the equivocation and their roots stayed different.
func TestSyncSpreadsUnseenEquivocation(t *testing.T) {
	ctx := context.Background()
	s := deterministicSigner(t, 71)
	wa, wb := newLogWriter(s, t0), newLogWriter(s, t0)
	a1 := wa.next(t, Grant{To: s.ID(), Amount: 1})
	b1 := wb.next(t, Grant{To: s.ID(), Amount: 2})
	a2 := wa.next(t, Grant{To: s.ID(), Amount: 3})
	b2 := wb.next(t, Grant{To: s.ID(), Amount: 4})
	x, y := memLedger(t, nil), memLedger(t, nil)
	if _, err := x.Ingest(ctx, rawsOf([]*Entry{a1, a2})); err != nil {
		t.Fatal(err)
	}
	if _, err := y.Ingest(ctx, rawsOf([]*Entry{b1, b2})); err != nil {
		t.Fatal(err)
	}
	if !syncUntilSame(t, x, y, 4) {
		t.Fatal("anti-entropy never reported the replicas in sync")
	}
	if !bytes.Equal(x.Root(), y.Root()) || x.Len() != 4 {
		t.Fatalf("after anti-entropy: %d and %d entries; want 4 each and one root", x.Len(), y.Len())
	}
	for _, l := range []*Ledger{x, y} {
		if r := l.Audit(); len(r.Equivocations) != 2 {
			t.Fatalf("equivocations %v, want both seqs reported", r.Equivocations)
		}
	}
}

// staleHello is a stream whose reads replay a hello written earlier (an
// initiator's hello held up by a cut cable) and whose writes are dropped.
type staleHello struct {
	r io.Reader
}

func (s staleHello) Read(p []byte) (int, error)  { return s.r.Read(p) }
func (s staleHello) Write(p []byte) (int, error) { return len(p), nil }

// A responder that finds the initiator's hello equal to its own must not
// count the exchange as a sync: the hello may be older than the exchange
// (written before a cut, delivered after the heal) and say nothing of what
// the initiator learnt since — a newer contract, say. Counting it let a
// provider back from a cut bill past the newer epoch's start.
func TestStaleEqualHelloIsNoSync(t *testing.T) {
	ctx := context.Background()
	a, b := memLedger(t, deterministicSigner(t, 120)), memLedger(t, deterministicSigner(t, 121))
	e, err := a.Append(ctx, Grant{To: b.ID(), Amount: 1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Ingest(ctx, [][]byte{e.Bytes()}); err != nil {
		t.Fatal(err)
	}
	// a's hello, written now; a then learns something new.
	var buf bytes.Buffer
	w := bufio.NewWriter(&buf)
	if err := writeFrame(w, a.hello(false)); err != nil {
		t.Fatal(err)
	}
	_ = w.Flush()
	if _, err := a.Append(ctx, Grant{To: b.ID(), Amount: 2}); err != nil {
		t.Fatal(err)
	}
	st, err := b.ServeSync(ctx, staleHello{&buf})
	if err != nil || !st.Same {
		t.Fatalf("exchange: %+v %v, want equal hellos", st, err)
	}
	if !b.LastSync().IsZero() {
		t.Fatalf("an exchange on a stale equal hello counted as a sync at %v", b.LastSync())
	}
}
