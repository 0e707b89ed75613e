package ledger

import (
	"testing"
	"time"
)

// BenchmarkAuditManyContractsOneInstance: one instance with 500 receipts,
// and 5,000 contracts for it that a stranger wrote (failing the contract
// check) plus 1,000 epochs its requester awarded itself. The audit and the
// requester's check of a receipt must cost about linearly in them (they
// were quadratic: an audit of 20,000 such contracts took minutes).
func BenchmarkAuditManyContractsOneInstance(b *testing.B) {
	m := newMarket(b, 200)
	s := setOf(m.ce)
	honest := m.prov.ID()
	for i := 0; i < 500; i++ {
		s.Add(m.receipt(b, Usage{CPUMicros: 1}))
	}
	sw := newLogWriter(deterministicSigner(b, 210), t0)
	for i := 0; i < 5000; i++ {
		c := m.c
		c.Epoch, c.Provider = uint64(i+2), sw.s.ID()
		s.Add(sw.next(b, c))
	}
	for i := 0; i < 1000; i++ {
		c := m.c
		c.Epoch, c.Provider, c.StartNanos = uint64(i+10_000), m.req.ID(), t0.Add(time.Duration(i)*time.Hour).UnixNano()
		s.Add(m.rw.next(b, c))
	}
	s.SetContractCheck(func(c Contract) error {
		if c.Provider == honest || c.Provider == m.req.ID() {
			return nil
		}
		return errUnagreed
	})
	res := s.ReceiptsOf(m.ce.id)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		Audit(s, AuditOptions{Now: t0.Add(10 * time.Hour)})
		for _, re := range res[:50] {
			_ = CheckReceiptAt(s, re, t0.Add(10*time.Hour))
		}
	}
}
