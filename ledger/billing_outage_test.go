package ledger

import (
	"context"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// A provider that was down for 100 slices bills every slice it owes when it
// returns (late receipts), not only the last few.
func TestProviderBillsEverySliceOwedAfterAnOutage(t *testing.T) {
	ctx := context.Background()
	req, prov := deterministicSigner(t, 100), deterministicSigner(t, 101)
	now := t0.Add(100*time.Second + 500*time.Millisecond)
	lp, _ := Open(Config{Signer: prov, Now: func() time.Time { return now }})
	defer lp.Close()
	c := Contract{InstanceID: "web", Requester: req.ID(), Provider: prov.ID(), Epoch: 1, Price: Price{CPU: 3600},
		SliceNanos: int64(time.Second), StartNanos: t0.UnixNano()}
	if _, err := lp.AppendContract(ctx, c); err != nil {
		t.Fatal(err)
	}
	NewBiller(lp, &fakeUsage{u: Usage{CPUMicros: 1000}}, nil, BillerConfig{}).Tick(ctx, now)
	var rep Report
	lp.View(func(s *Set) { rep = Audit(s, AuditOptions{Now: now}) })
	if rep.Receipts != 100 || rep.Unbilled != 0 || !rep.OK {
		t.Fatalf("%d receipts (want 100), %d unbilled, problems %+v", rep.Receipts, rep.Unbilled, rep.Problems)
	}
	if rep.Late < 60 { // slices that ended more than BillingGrace before now
		t.Fatalf("late %d, want the slices that ended more than the grace ago", rep.Late)
	}
}

// Billing stops at the contract's end: the slice of the stop is billed up
// to the stop (the last, partial receipt), nothing after it, and the audit
// counts nothing unbilled.
func TestBillingStopsAtTheEndWithAPartialSlice(t *testing.T) {
	ctx := context.Background()
	req, prov := deterministicSigner(t, 102), deterministicSigner(t, 103)
	now := t0.Add(10 * time.Second)
	lp, _ := Open(Config{Signer: prov, Now: func() time.Time { return now }})
	defer lp.Close()
	c := Contract{InstanceID: "job", Requester: req.ID(), Provider: prov.ID(), Epoch: 1, Price: Price{CPU: 3600},
		SliceNanos: int64(time.Second), StartNanos: t0.UnixNano()}
	ce, err := lp.AppendContract(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	endAt := t0.Add(3*time.Second + 400*time.Millisecond).UnixNano()
	if _, err := lp.Append(ctx, End{Contract: ce.CID(), AtNanos: endAt, State: EndFailed, Reason: "exit status 1 after 3 retries"}); err != nil {
		t.Fatal(err)
	}
	NewBiller(lp, &fakeUsage{u: Usage{CPUMicros: 1000}}, nil, BillerConfig{}).Tick(ctx, now)
	var rep Report
	var last Receipt
	lp.View(func(s *Set) {
		rep = Audit(s, AuditOptions{Now: now.Add(time.Hour)})
		for _, re := range s.receipts[ce.CID()] {
			if r := re.Value().(Receipt); r.Slice >= last.Slice {
				last = r
			}
		}
	})
	if rep.Receipts != 4 || last.Slice != 3 || last.ToNanos != endAt || rep.Unbilled != 0 || !rep.OK {
		t.Fatalf("%d receipts (want 4), last %+v (want slice 3 to the end), unbilled %d, problems %+v", rep.Receipts, last, rep.Unbilled, rep.Problems)
	}
}

// nobody is a peer picker that never offers a peer.
type nobody struct{}

func (nobody) Peers() []peer.ID { return nil }
func (nobody) OpenSync(context.Context, peer.ID) (io.ReadWriteCloser, error) {
	return nil, io.ErrClosedPipe
}

// A grid of one bills: a node whose anti-entropy never found a peer bills
// the instances it requested itself without waiting for a sync, and acks
// its own receipts.
func TestANodeAloneBills(t *testing.T) {
	me := deterministicSigner(t, 104)
	l, err := Open(Config{Signer: me})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ctx := context.Background()
	start := time.Now().Add(-2 * time.Second)
	c := Contract{InstanceID: "solo", Requester: me.ID(), Provider: me.ID(), Epoch: 1, Price: Price{CPU: 3600},
		SliceNanos: int64(200 * time.Millisecond), StartNanos: start.UnixNano()}
	if _, err := l.AppendContract(ctx, c); err != nil {
		t.Fatal(err)
	}
	l.StartSync(ctx, nobody{}, nobody{}, SyncConfig{Interval: 20 * time.Millisecond})
	b := NewBiller(l, &fakeUsage{u: Usage{CPUMicros: 1000}}, nil, BillerConfig{RequireSync: true})
	b.Start(ctx)
	defer b.Close()
	waitFor(t, 20*time.Second, "a lone node's receipts, acknowledged", func() bool {
		var rep Report
		l.View(func(s *Set) { rep = Audit(s, AuditOptions{}) })
		return rep.Receipts >= 10 && rep.Acked >= 10 && rep.OK
	})
	if l.Alone().IsZero() {
		t.Fatal("a node that never had a peer is not alone")
	}
}

// blackHole accepts sync streams and never answers (a black-holed peer);
// good serves them from a ledger.
type mixedPeers struct {
	bad, good peer.ID
	serve     *Ledger
	mu        sync.Mutex
	far       []net.Conn
}

func (m *mixedPeers) Peers() []peer.ID { return []peer.ID{m.bad, m.good} }

func (m *mixedPeers) OpenSync(ctx context.Context, p peer.ID) (io.ReadWriteCloser, error) {
	a, b := net.Pipe()
	m.mu.Lock()
	m.far = append(m.far, b)
	m.mu.Unlock()
	if p == m.good {
		go func() { _, _ = m.serve.ServeSync(ctx, b); b.Close() }()
	}
	return a, nil
}

func (m *mixedPeers) closeAll() {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, c := range m.far {
		c.Close()
	}
}

// One unreachable peer does not stall anti-entropy: exchanges run with
// several peers at once, so the node keeps syncing (and billing) through
// the live one while the exchange with the black-holed one hangs.
func TestOneBlackHoledPeerDoesNotStallSync(t *testing.T) {
	l, err := Open(Config{Signer: deterministicSigner(t, 105)})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	other, err := Open(Config{Signer: deterministicSigner(t, 106)})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	mp := &mixedPeers{bad: deterministicSigner(t, 107).ID(), good: other.ID(), serve: other}
	t.Cleanup(mp.closeAll)
	// A timeout far longer than the test: only concurrency can help.
	l.StartSync(context.Background(), mp, mp, SyncConfig{Interval: 20 * time.Millisecond, Timeout: time.Hour, Fanout: 2})
	since := time.Now()
	for i := 0; i < 3; i++ {
		waitFor(t, 20*time.Second, "an exchange with the live peer", func() bool { return l.LastSync().After(since) })
		since = time.Now()
	}
	if !l.Alone().IsZero() {
		t.Fatal("a node with peers counts as alone")
	}
}

// EndSpan ends this node's contract of an instance once, whichever record
// of the agreement it holds.
func TestEndSpanEndsOnce(t *testing.T) {
	ctx := context.Background()
	req, prov := deterministicSigner(t, 108), deterministicSigner(t, 109)
	lp, _ := Open(Config{Signer: prov})
	defer lp.Close()
	c := Contract{InstanceID: "web", Requester: req.ID(), Provider: prov.ID(), Epoch: 3, Price: Price{CPU: 3600},
		SliceNanos: int64(time.Second), StartNanos: t0.UnixNano()}
	if _, err := lp.AppendContract(ctx, c); err != nil {
		t.Fatal(err)
	}
	if ok, err := lp.EndSpan(ctx, "web", 2, t0.Add(time.Minute), EndFailed, "x"); ok || err != nil {
		t.Fatalf("another epoch ended: %v %v", ok, err)
	}
	for i, want := range []bool{true, false} {
		if ok, err := lp.EndSpan(ctx, "web", 3, t0.Add(time.Minute), EndFailed, "exit status 1"); ok != want || err != nil {
			t.Fatalf("call %d: %v %v, want %v", i, ok, err, want)
		}
	}
	var sp Span
	lp.View(func(s *Set) {
		for _, ce := range s.contracts {
			sp = SpanOf(s, ce)
		}
	})
	if sp.EndNanos != t0.Add(time.Minute).UnixNano() || sp.EndedBy != EndFailed {
		t.Fatalf("span %+v", sp)
	}
	if !lp.Ended("web", 3, t0.Add(time.Minute)) || lp.Ended("web", 3, t0.Add(time.Minute-1)) || lp.Ended("web", 2, t0.Add(time.Hour)) {
		t.Fatal("Ended disagrees with the span")
	}
	// An earlier end (the host stopped the instance before the bound its
	// requester set) is appended and counts; a later one is not.
	if ok, err := lp.EndSpan(ctx, "web", 3, t0.Add(2*time.Minute), EndStopped, "later"); ok || err != nil {
		t.Fatalf("later end: %v %v", ok, err)
	}
	if ok, err := lp.EndSpan(ctx, "web", 3, t0.Add(30*time.Second), EndStopped, "stopped as its requester asked"); !ok || err != nil {
		t.Fatalf("earlier end: %v %v", ok, err)
	}
	lp.View(func(s *Set) {
		for _, ce := range s.contracts {
			sp = SpanOf(s, ce)
		}
	})
	if sp.EndNanos != t0.Add(30*time.Second).UnixNano() || sp.EndedBy != EndStopped {
		t.Fatalf("span after the earlier end %+v", sp)
	}
	// Those ends are the provider's own: its requester has not ended it.
	if lp.EndedByRequester("web", 3, t0.Add(time.Hour)) {
		t.Fatal("the provider's own end taken for its requester's")
	}
}

// A provider learns that the requester of a contract it provides ended its
// billing (at or before a time); an end by anyone else, or for another
// epoch, is not that.
func TestEndedByRequester(t *testing.T) {
	ctx := context.Background()
	req, prov, other := deterministicSigner(t, 112), deterministicSigner(t, 113), deterministicSigner(t, 114)
	lp, _ := Open(Config{Signer: prov})
	defer lp.Close()
	c := Contract{InstanceID: "web", Requester: req.ID(), Provider: prov.ID(), Epoch: 2, Price: Price{CPU: 3600},
		SliceNanos: int64(time.Second), StartNanos: t0.UnixNano()}
	ce, err := lp.AppendContract(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	stranger := newLogWriter(other, t0)
	fake := stranger.next(t, End{Contract: ce.CID(), AtNanos: t0.Add(time.Second).UnixNano(), State: EndStopped})
	if _, err := lp.Ingest(ctx, [][]byte{fake.Bytes()}); err != nil {
		t.Fatal(err)
	}
	if lp.EndedByRequester("web", 2, t0.Add(time.Hour)) {
		t.Fatal("a stranger's end taken for the requester's")
	}
	rw := newLogWriter(req, t0)
	end := rw.next(t, End{Contract: ce.CID(), AtNanos: t0.Add(time.Minute).UnixNano(), State: EndStopped})
	if _, err := lp.Ingest(ctx, [][]byte{end.Bytes()}); err != nil {
		t.Fatal(err)
	}
	if lp.EndedByRequester("web", 2, t0.Add(time.Minute-1)) || !lp.EndedByRequester("web", 2, t0.Add(time.Minute)) || lp.EndedByRequester("web", 1, t0.Add(time.Hour)) {
		t.Fatal("the requester's end not seen at its time only")
	}
	// A node hosting its own request: its own end (a failure) is not its
	// requester stopping payment.
	self := Contract{InstanceID: "own", Requester: prov.ID(), Provider: prov.ID(), Epoch: 1, Price: Price{CPU: 3600},
		SliceNanos: int64(time.Second), StartNanos: t0.UnixNano()}
	if _, err := lp.AppendContract(ctx, self); err != nil {
		t.Fatal(err)
	}
	if ok, err := lp.EndSpan(ctx, "own", 1, t0.Add(time.Second), EndFailed, "exit status 3"); !ok || err != nil {
		t.Fatalf("own end: %v %v", ok, err)
	}
	if lp.EndedByRequester("own", 1, t0.Add(time.Hour)) {
		t.Fatal("a self-hosted contract's own end taken for its requester stopping payment")
	}
}

// notRunning is a usage source for a provider that does not run anything.
type notRunning struct{}

func (notRunning) Usage(string, time.Time, time.Time) (Usage, bool, error) {
	return Usage{}, false, nil
}

// A contract its provider does not serve (the instance is not run there,
// and the metering never saw it) is not billed, and once its provider has
// waited long enough for it to start, its span is ended there: no slice of
// it counts as unbilled.
func TestAContractNotServedEndsInsteadOfStayingUnbilled(t *testing.T) {
	ctx := context.Background()
	req, prov := deterministicSigner(t, 110), deterministicSigner(t, 111)
	c := Contract{InstanceID: "ghost", Requester: req.ID(), Provider: prov.ID(), Epoch: 1, Price: Price{CPU: 3600},
		SliceNanos: int64(time.Second), StartNanos: t0.UnixNano()}
	now := t0.Add(3 * time.Second)
	lp, _ := Open(Config{Signer: prov, Now: func() time.Time { return now }})
	defer lp.Close()
	if _, err := lp.AppendContract(ctx, c); err != nil {
		t.Fatal(err)
	}
	b := NewBiller(lp, notRunning{}, nil, BillerConfig{})
	b.Tick(ctx, now)
	if n := lp.Len(); n != 1 {
		t.Fatalf("%d entries right after the contract: it may still be starting", n)
	}
	now = t0.Add(time.Minute)
	b.Tick(ctx, now)
	b.Tick(ctx, now)
	var rep Report
	lp.View(func(s *Set) { rep = Audit(s, AuditOptions{Now: now.Add(time.Hour)}) })
	if rep.Receipts != 0 || rep.Unbilled != 0 || !rep.OK || rep.Entries != 2 {
		t.Fatalf("receipts %d, unbilled %d, entries %d, problems %+v", rep.Receipts, rep.Unbilled, rep.Entries, rep.Problems)
	}
}
