package ledger

import (
	"testing"
	"time"
)

// FuzzAuditReceipt signs a contract, a receipt, an optional ack and an
// optional end from fuzzed fields (slice lengths and indices, periods,
// usage, times: zero, negative, huge) and checks that the audit, the
// requester's check, the unbilled count and balances never panic, and that
// the requester's check refuses exactly the receipts the audit reports a
// problem for (the requester acknowledges only what the audit accepts).
func FuzzAuditReceipt(f *testing.F) {
	f.Add(int64(60e9), int64(0), uint64(0), int64(0), int64(60e9), uint64(1000), uint64(0), int64(0), int64(120e9), false)
	f.Add(int64(1), int64(-5), ^uint64(0), int64(-1), int64(0), ^uint64(0), ^uint64(0), int64(1), int64(1)<<62, true)
	f.Add(int64(1)<<62, int64(1)<<62, uint64(1)<<55, int64(1)<<62, int64(-1)<<63, uint64(1), uint64(7), int64(-1), int64(-1), true)
	req, prov := deterministicSigner(f, 200), deterministicSigner(f, 201)
	f.Fuzz(func(t *testing.T, slice, startOff int64, idx uint64, fromOff, toOff int64, cpu, capCPU uint64, endOff, nowOff int64, ack bool) {
		base := t0.UnixNano()
		c := Contract{InstanceID: "fz", Requester: req.ID(), Provider: prov.ID(), Epoch: 1, Price: Price{CPU: 1000},
			Caps: Usage{CPUMicros: capCPU}, SliceNanos: slice, StartNanos: base + startOff%int64(time.Hour)}
		pw, rw := newLogWriter(prov, t0), newLogWriter(req, t0)
		ce, err := NewEntry(1, cidUndef(), t0, c)
		if err != nil {
			return // a contract the entry rules refuse
		}
		if err := prov.Sign(ce); err != nil {
			t.Fatal(err)
		}
		pw.seq, pw.prev = 1, ce.id
		r := Receipt{Contract: ce.id, InstanceID: c.InstanceID, Epoch: 1, Slice: idx, FromNanos: base + fromOff, ToNanos: base + toOff,
			Usage: Usage{CPUMicros: cpu}, Amount: Amount(c.Price, Usage{CPUMicros: cpu})}
		pw.now = time.Unix(0, base)
		re, err := NewEntry(2, ce.id, time.Unix(0, max(r.ToNanos, base)), r)
		if err != nil {
			return
		}
		if err := prov.Sign(re); err != nil {
			t.Fatal(err)
		}
		es := []*Entry{ce, re}
		if ack {
			rw.now = time.Unix(0, max(r.ToNanos, base))
			es = append(es, rw.next(t, Ack{Receipt: re.id, Amount: r.Amount}))
		}
		if endOff != 0 {
			es = append(es, rw.next(t, End{Contract: ce.id, AtNanos: max(1, base+endOff), State: EndStopped}))
		}
		s := setOf(es...)
		now := time.Unix(0, base+nowOff)
		rep := Audit(s, AuditOptions{Now: now})
		_ = BalanceOf(s, req.ID(), nil)
		_ = SpanOf(s, ce)
		checkErr := CheckReceiptAt(s, re, now)
		var reported []string
		for _, p := range rep.Problems {
			if p.CID == re.id.String() {
				reported = append(reported, p.Code)
			}
		}
		if !ack && (checkErr == nil) != (len(reported) == 0) {
			t.Fatalf("requester's check %v, audit problems %v: they disagree on %+v under %+v", checkErr, reported, r, c)
		}
	})
}
