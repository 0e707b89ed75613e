package ledger

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"
)

func TestIngestRejectsTamperedForgedReplayed(t *testing.T) {
	ctx := context.Background()
	m := newMarket(t, 5)
	r := m.receipt(t, Usage{CPUMicros: 500})
	l := memLedger(t, nil)
	if added, err := l.Ingest(ctx, rawsOf([]*Entry{m.ce, r})); err != nil || len(added) != 2 {
		t.Fatalf("good entries: added %d, err %v", len(added), err)
	}

	// Tampered: one byte of the body changed.
	tampered := append([]byte(nil), r.Bytes()...)
	tampered[len(tampered)-80] ^= 0xff
	// Forged: the provider's entry re-signed by someone else, author kept.
	mallory := deterministicSigner(t, 66)
	forged := &Entry{Author: r.Author, Seq: r.Seq + 1, Prev: r.CID(), Kind: KindReceipt, TimeNanos: r.TimeNanos, Body: r.Body}
	if err := mallory.Sign(forged); err != nil {
		t.Fatal(err)
	}
	forged.Author = r.Author // claim the provider wrote it
	forgedRaw := encodeWire(t, forged)
	// Cross-type replay: a signature over the same bytes without the entry domain.
	x := &Entry{Author: m.prov.ID(), Seq: 3, Prev: r.CID(), Kind: KindReceipt, TimeNanos: r.TimeNanos, Body: r.Body}
	msg, _ := x.unsignedBytes()
	x.Sig = signRaw(m.prov, msg)
	replayRaw := encodeWire(t, x)

	for name, raw := range map[string][]byte{"tampered": tampered, "forged": forgedRaw, "cross-domain replay": replayRaw} {
		added, err := l.Ingest(ctx, [][]byte{raw})
		if len(added) != 0 || !errors.Is(err, ErrRejected) {
			t.Errorf("%s: added %d, err %v", name, len(added), err)
		}
	}
	// Replayed verbatim: accepted as already known, nothing added.
	added, err := l.Ingest(ctx, [][]byte{r.Bytes()})
	if err != nil || len(added) != 0 {
		t.Fatalf("replay: added %d, err %v", len(added), err)
	}
	if l.Len() != 2 {
		t.Fatalf("ledger has %d entries, want 2", l.Len())
	}
	// Good and bad mixed in one batch: the good one still gets in.
	r2 := m.receipt(t, Usage{CPUMicros: 1})
	added, err = l.Ingest(ctx, [][]byte{tampered, r2.Bytes()})
	if len(added) != 1 || !errors.Is(err, ErrRejected) {
		t.Fatalf("mixed batch: added %d, err %v", len(added), err)
	}
}

func encodeWire(t *testing.T, e *Entry) []byte {
	t.Helper()
	var prev []byte
	if e.Prev.Defined() {
		prev = e.Prev.Bytes()
	}
	b, err := marshal(wireEntry{Author: []byte(e.Author), Seq: e.Seq, Prev: prev, Kind: uint8(e.Kind), Time: e.TimeNanos, Body: e.Body, Sig: e.Sig})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDecodeRejectsMalformed(t *testing.T) {
	m := newMarket(t, 7)
	good := m.ce
	cases := map[string]func(e *Entry){
		"seq 0":          func(e *Entry) { e.Seq = 0 },
		"prev at seq 1":  func(e *Entry) { e.Prev = good.CID() },
		"unknown kind":   func(e *Entry) { e.Kind = 99 },
		"short sig":      func(e *Entry) { e.Sig = e.Sig[:10] },
		"bad author":     func(e *Entry) { e.Author = "nope" },
		"body mismatch":  func(e *Entry) { e.Kind = KindAck },
		"trailing bytes": nil,
	}
	for name, mut := range cases {
		var raw []byte
		if mut == nil {
			raw = append(append([]byte(nil), good.Bytes()...), 0x00)
		} else {
			c := *good
			mut(&c)
			raw = encodeWire(t, &c)
		}
		if _, err := Decode(raw); !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrBadAuthor) {
			t.Errorf("%s: err %v", name, err)
		}
	}
	big := make([]byte, MaxEntrySize+1)
	if _, err := Decode(big); !errors.Is(err, ErrTooLarge) {
		t.Errorf("oversized: %v", err)
	}
}

func TestLedgerPersistsAndReopens(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "ledger.db")
	s := deterministicSigner(t, 11)
	l, err := Open(Config{Path: path, Signer: s})
	if err != nil {
		t.Fatal(err)
	}
	var cids []string
	for i := 0; i < 5; i++ {
		e, err := l.Append(ctx, Grant{To: s.ID(), Amount: uint64(i)})
		if err != nil {
			t.Fatal(err)
		}
		cids = append(cids, e.CID().String())
	}
	root := l.RootHex()
	l.Close()
	ro, err := Open(Config{Path: path, ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	if ro.RootHex() != root || ro.Len() != 5 {
		t.Fatalf("reopened: %d entries root %s, want 5 %s", ro.Len(), ro.RootHex(), root)
	}
	if _, err := ro.Append(ctx, Grant{}); err == nil {
		t.Fatal("append to read-only ledger succeeded")
	}
	ro.Close()
	l2, err := Open(Config{Path: path, Signer: s})
	if err != nil {
		t.Fatal(err)
	}
	defer l2.Close()
	e, err := l2.Append(ctx, Grant{To: s.ID(), Amount: 9})
	if err != nil {
		t.Fatal(err)
	}
	if e.Seq != 6 || e.Prev.String() != cids[4] {
		t.Fatalf("append after reopen: seq %d prev %s", e.Seq, e.Prev)
	}
	if r := l2.Audit(); !r.OK {
		t.Fatalf("audit: %+v", r.Problems)
	}
	_ = time.Second
}
