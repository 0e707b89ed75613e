package settle

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"

	"github.com/weftgrid/weft/ledger"
	"github.com/weftgrid/weft/scheduler"
	"github.com/weftgrid/weft/scheduler/schedtest"
)

type party struct {
	market *scheduler.Signer
	ledger *ledger.Signer
}

func newParty(t *testing.T) party {
	t.Helper()
	priv, _, err := crypto.GenerateEd25519Key(nil)
	if err != nil {
		t.Fatal(err)
	}
	ms, err := scheduler.NewSigner(priv)
	if err != nil {
		t.Fatal(err)
	}
	ls, err := ledger.NewSigner(priv)
	if err != nil {
		t.Fatal(err)
	}
	return party{ms, ls}
}

// A contract counts only when its evidence — the requester's award and the
// provider's acceptance — says what it says: a peer that writes a contract
// at a higher epoch for someone else's instance fences nothing, and the
// audit names it.
func TestForgedContractFencesNothing(t *testing.T) {
	ctx := context.Background()
	alice, bob, mallory := newParty(t), newParty(t), newParty(t)
	start := time.Now().Add(-time.Hour).Truncate(time.Minute)
	mc, err := schedtest.Contract(alice.market, bob.market, "web", 1, start)
	if err != nil {
		t.Fatal(err)
	}
	real := Contract(mc, time.Minute)
	if err := CheckContract(real); err != nil {
		t.Fatalf("a contract agreed by both parties fails the check: %v", err)
	}
	for name, c := range map[string]ledger.Contract{
		"no evidence":       func() ledger.Contract { c := real; c.Evidence = nil; return c }(),
		"another provider":  func() ledger.Contract { c := real; c.Provider = mallory.ledger.ID(); return c }(),
		"a higher epoch":    func() ledger.Contract { c := real; c.Epoch = 2; return c }(),
		"an earlier start":  func() ledger.Contract { c := real; c.StartNanos -= int64(time.Hour); return c }(),
		"a different price": func() ledger.Contract { c := real; c.Price.CPU++; return c }(),
	} {
		if CheckContract(c) == nil {
			t.Errorf("%s: passes the check", name)
		}
	}

	// Mallory's own agreement with herself, passed off as a newer epoch of
	// Alice's instance.
	own, err := schedtest.Contract(mallory.market, mallory.market, "mine", 7, start)
	if err != nil {
		t.Fatal(err)
	}
	forged := real
	forged.Provider, forged.Epoch, forged.StartNanos, forged.Evidence = mallory.ledger.ID(), 2, start.UnixNano(), own.Encode()

	l, err := ledger.Open(ledger.Config{Signer: bob.ledger, ContractCheck: CheckContract})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ce, err := l.AppendContract(ctx, real)
	if err != nil {
		t.Fatal(err)
	}
	from, to := real.SliceBounds(0)
	if _, err := l.Append(ctx, ledger.MakeReceipt(ce.CID(), real, 0, from, to, ledger.Usage{CPUMicros: 1000})); err != nil {
		t.Fatal(err)
	}
	ml, err := ledger.Open(ledger.Config{Signer: mallory.ledger})
	if err != nil {
		t.Fatal(err)
	}
	defer ml.Close()
	fe, err := ml.AppendContract(ctx, forged)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Ingest(ctx, [][]byte{fe.Bytes()}); err != nil {
		t.Fatal(err)
	}
	if !l.Has(fe.CID()) {
		t.Fatal("the forged contract was not kept: replicas must hold the same set")
	}
	if got, epoch, ok := l.LatestEpoch(real.InstanceID); !ok || got != ce.CID() || epoch != 1 {
		t.Fatalf("latest epoch = %s %d, want the real contract at epoch 1", got, epoch)
	}
	rep := l.Audit()
	var unagreed, fenced int
	for _, p := range append(rep.Problems, rep.Ignored...) {
		switch p.Code {
		case ledger.CodeUnagreedContract:
			unagreed++
			if p.CID != fe.CID().String() {
				t.Errorf("unagreed_contract names %s, want the forged %s", p.CID, fe.CID())
			}
		case ledger.CodeFenced:
			fenced++
		}
	}
	if len(rep.Ignored) != 1 || rep.Ignored[0].CID != fe.CID().String() {
		t.Errorf("the forged contract is not listed as ignored: %+v", rep.Ignored)
	}
	if unagreed != 1 || fenced != 0 {
		t.Fatalf("audit: %d unagreed contracts (want 1), %d fenced receipts (want 0): %+v", unagreed, fenced, rep.Problems)
	}
}

// A contract's caps are derived from the signed request's resources and the
// slice: the evidence check re-derives them, so a contract with other caps
// (none, or higher) is not agreed. Only under an award that states no slice
// (made by a node older than caps) may a contract carry none.
func TestContractCapsComeFromTheSignedResources(t *testing.T) {
	alice, bob := newParty(t), newParty(t)
	mc, err := schedtest.SlicedContract(alice.market, bob.market, "web", 1, time.Now().Add(-time.Hour), int64(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	lc := Contract(mc, time.Minute)
	// schedtest asks for 500 millicores and 256 MiB.
	want := ledger.Usage{CPUMicros: 1_000_000, MemByteSeconds: 2 << 28, MemPeakBytes: 1 << 28}
	if lc.Caps != want {
		t.Fatalf("caps %+v, want %+v", lc.Caps, want)
	}
	if err := CheckContract(lc); err != nil {
		t.Fatal(err)
	}
	for name, caps := range map[string]ledger.Usage{"none": {}, "higher": {CPUMicros: 10_000_000, MemByteSeconds: 2 << 28, MemPeakBytes: 1 << 28}} {
		c := lc
		c.Caps = caps
		if CheckContract(c) == nil {
			t.Errorf("caps %s: passes the check", name)
		}
	}
	old, err := schedtest.Contract(alice.market, bob.market, "web", 1, time.Now().Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	for name, caps := range map[string]ledger.Usage{"derived": want, "none": {}} {
		c := Contract(old, 2*time.Second)
		c.Caps = caps
		if err := CheckContract(c); err != nil {
			t.Errorf("award without a slice, caps %s: %v", name, err)
		}
	}
	c := Contract(old, 2*time.Second)
	c.Caps.CPUMicros *= 10
	if CheckContract(c) == nil {
		t.Error("award without a slice, higher caps: passes the check")
	}
	if got := Caps(scheduler.Resources{CPUMillis: 1 << 62, MemoryBytes: 1 << 62}, 24*time.Hour); got.CPUMicros != math.MaxUint64 || got.MemPeakBytes != 1<<62 {
		t.Fatalf("huge resources: %+v, want saturation", got)
	}
	if got := Caps(scheduler.Resources{}, time.Minute); got != (ledger.Usage{}) {
		t.Fatalf("no resources: caps %+v, want none", got)
	}
}

// The slice signed into the award is the contract's: a ledger contract
// with another slice is not what was agreed.
func TestContractSliceIsTheSignedOne(t *testing.T) {
	alice, bob := newParty(t), newParty(t)
	mc, err := schedtest.SlicedContract(alice.market, bob.market, "web", 1, time.Now().Add(-time.Hour), int64(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	lc := Contract(mc, time.Minute) // the recording node's slice does not matter
	if lc.SliceLength() != time.Second {
		t.Fatalf("slice %s, want the award's 1s", lc.SliceLength())
	}
	if err := CheckContract(lc); err != nil {
		t.Fatal(err)
	}
	other := lc
	other.SliceNanos = int64(time.Minute)
	if CheckContract(other) == nil {
		t.Fatal("a contract with another slice than the award's passes the check")
	}
}
