package ledger

import (
	"crypto/ed25519"
	"encoding/json"
	"io"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/crypto"
)

func cidUndef() cid.Cid { return cid.Undef }

func signRaw(s *Signer, msg []byte) []byte { return ed25519.Sign(s.key, msg) }

// deterministicSigner derives a signer from a seed byte (reproducible tests).
func deterministicSigner(tb testing.TB, seed byte) *Signer {
	tb.Helper()
	var b [ed25519.SeedSize]byte
	for i := range b {
		b[i] = seed
	}
	priv, err := crypto.UnmarshalEd25519PrivateKey(ed25519.NewKeyFromSeed(b[:]))
	if err != nil {
		tb.Fatal(err)
	}
	s, err := NewSigner(priv)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// logWriter signs a chain of entries for one author without a Ledger.
type logWriter struct {
	s    *Signer
	seq  uint64
	prev cid.Cid
	now  time.Time
	// clock, when set, is shared by writers: each entry is written after
	// the latest entry of any of them.
	clock *time.Time
}

func newLogWriter(s *Signer, t0 time.Time) *logWriter { return &logWriter{s: s, now: t0} }

func (w *logWriter) next(tb testing.TB, body any) *Entry {
	tb.Helper()
	w.seq++
	w.now = w.now.Add(time.Millisecond)
	if r, ok := body.(Receipt); ok && w.now.UnixNano() < r.ToNanos {
		// A receipt is written once its period has ended.
		w.now = time.Unix(0, r.ToNanos).Add(time.Millisecond)
	}
	if w.clock != nil {
		if w.clock.After(w.now) {
			w.now = *w.clock
		}
		*w.clock = w.now
	}
	e, err := NewEntry(w.seq, w.prev, w.now, body)
	if err != nil {
		tb.Fatal(err)
	}
	if err := w.s.Sign(e); err != nil {
		tb.Fatal(err)
	}
	w.prev = e.id
	return e
}

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// market is a requester and a provider with one contract.
type market struct {
	req, prov   *Signer
	rw, pw      *logWriter
	c           Contract
	ce          *Entry
	slice       time.Duration
	nextReceipt uint64
}

func newMarket(tb testing.TB, seed byte) *market {
	m := &market{req: deterministicSigner(tb, seed), prov: deterministicSigner(tb, seed+1), slice: time.Minute}
	m.rw, m.pw = newLogWriter(m.req, t0), newLogWriter(m.prov, t0)
	clock := t0
	m.rw.clock, m.pw.clock = &clock, &clock
	m.c = Contract{InstanceID: "inst-" + string(rune('a'+seed%26)), Request: "web", Requester: m.req.ID(), Provider: m.prov.ID(), Epoch: 1,
		Price: Price{CPU: 1000, Mem: 3600, Net: 10}, Caps: Usage{CPUMicros: 60_000, MemPeakBytes: 1 << 30},
		SliceNanos: int64(m.slice), StartNanos: t0.UnixNano()}
	m.ce = m.pw.next(tb, m.c)
	return m
}

// receipt signs the provider's receipt for the next slice with usage u.
func (m *market) receipt(tb testing.TB, u Usage) *Entry {
	from, to := m.c.SliceBounds(m.nextReceipt)
	r := MakeReceipt(m.ce.id, m.c, m.nextReceipt, from, to, u)
	m.nextReceipt++
	return m.pw.next(tb, r)
}

func (m *market) ack(tb testing.TB, re *Entry) *Entry {
	return m.rw.next(tb, Ack{Receipt: re.id, Amount: re.Value().(Receipt).Amount})
}

func setOf(es ...*Entry) *Set {
	s := NewSet()
	for _, e := range es {
		s.Add(e)
	}
	return s
}

func memLedger(tb testing.TB, s *Signer) *Ledger {
	tb.Helper()
	l, err := Open(Config{Signer: s, Workers: 2})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { l.Close() })
	return l
}

func rawsOf(es []*Entry) [][]byte {
	out := make([][]byte, len(es))
	for i, e := range es {
		out[i] = e.Bytes()
	}
	return out
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(tb testing.TB, d time.Duration, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func jsonEncode(w io.Writer, v any) error { return json.NewEncoder(w).Encode(v) }
