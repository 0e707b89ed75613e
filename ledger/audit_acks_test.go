package ledger

import (
	"math"
	"testing"
)

// The audit's acked count and amount must mean what statements and
// balances mean: acknowledged by the contract's requester, for the
// receipt's amount. An ack by anyone else carries no weight: the receipt is
// still unconfirmed (it used to be counted as acked and dropped from the
// unconfirmed list), and the ack is listed as ignored (bad_ack), not a
// problem that would fail every node's audit.
func TestAuditCountsOnlyTheRequestersAck(t *testing.T) {
	m := newMarket(t, 90)
	re := m.receipt(t, Usage{CPUMicros: 1000})
	stranger := newLogWriter(deterministicSigner(t, 92), t0)
	ack := stranger.next(t, Ack{Receipt: re.CID(), Amount: re.Value().(Receipt).Amount})
	s := setOf(m.ce, re, ack)
	if st := receiptStatus(s, re, m.c.Requester); st != StatusUnconfirmed {
		t.Fatalf("statement status %s, want unconfirmed", st)
	}
	r := Audit(s, AuditOptions{})
	if r.Acked != 0 || r.AckedAmount != 0 || len(r.Unconfirmed) != 1 || r.Unconfirmed[0] != re.CID().String() {
		t.Fatalf("audit: acked %d (amount %d), unconfirmed %v; want 0, 0 and the receipt", r.Acked, r.AckedAmount, r.Unconfirmed)
	}
	if !r.OK || len(r.Ignored) != 1 || r.Ignored[0].CID != ack.CID().String() || r.Ignored[0].Code != CodeBadAck {
		t.Fatalf("a stranger's ack: ok %v problems %+v ignored %+v; want ok and the ack ignored", r.OK, r.Problems, r.Ignored)
	}
}

// acked_amount saturates like every other sum of amounts instead of
// wrapping around.
func TestAuditAckedAmountSaturates(t *testing.T) {
	req, prov := deterministicSigner(t, 93), deterministicSigner(t, 94)
	rw, pw := newLogWriter(req, t0), newLogWriter(prov, t0)
	c := Contract{InstanceID: "big", Requester: req.ID(), Provider: prov.ID(), Epoch: 1, Price: Price{CPU: math.MaxUint64},
		SliceNanos: 60e9, StartNanos: t0.UnixNano()}
	ce := pw.next(t, c)
	es := []*Entry{ce}
	for i := uint64(0); i < 2; i++ {
		from, to := c.SliceBounds(i)
		re := pw.next(t, MakeReceipt(ce.CID(), c, i, from, to, Usage{CPUMicros: math.MaxUint64}))
		if re.Value().(Receipt).Amount != math.MaxUint64 {
			t.Fatalf("amount %d", re.Value().(Receipt).Amount)
		}
		es = append(es, re, rw.next(t, Ack{Receipt: re.CID(), Amount: math.MaxUint64}))
	}
	r := Audit(setOf(es...), AuditOptions{})
	if r.Acked != 2 || r.AckedAmount != math.MaxUint64 {
		t.Fatalf("acked %d amount %d, want 2 and %d (saturated); problems %+v", r.Acked, r.AckedAmount, uint64(math.MaxUint64), r.Problems)
	}
}
