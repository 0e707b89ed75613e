package ledger

import (
	stded "crypto/ed25519"
	"errors"
	"math/big"
	"testing"
)

// receipts returns n receipts of one fresh market, with the contract first.
func receipts(t *testing.T, seed byte, n int) []*Entry {
	m := newMarket(t, seed)
	es := []*Entry{m.ce}
	for i := 0; i < n; i++ {
		es = append(es, m.receipt(t, Usage{CPUMicros: uint64(i + 1)}))
	}
	return es
}

// withSig returns e's encoding with its signature replaced.
func withSig(t *testing.T, e *Entry, sig []byte) []byte {
	t.Helper()
	c := *e
	c.Sig = sig
	return encodeWire(t, &c)
}

// A batch holding a few bad signatures among many good ones accepts the
// good ones and names exactly the bad ones, as one-by-one checks would.
func TestBatchVerifyNamesTheBadEntries(t *testing.T) {
	es := append(receipts(t, 21, 40), receipts(t, 41, 40)...)
	raws := rawsOf(es)
	bad := map[int]bool{3: true, 40: true, 77: true}
	for i := range bad {
		sig := append([]byte(nil), es[i].Sig...)
		sig[5] ^= 0x01
		raws[i] = withSig(t, es[i], sig)
	}
	for _, workers := range []int{1, 2, 3} {
		good, errs := verifyParallel(raws, nil, workers)
		if len(good) != len(es)-len(bad) || len(errs) != len(bad) {
			t.Fatalf("workers=%d: %d good, %d errors; want %d and %d", workers, len(good), len(errs), len(es)-len(bad), len(bad))
		}
		for _, err := range errs {
			if !errors.Is(err, ErrBadSignature) {
				t.Fatalf("workers=%d: error %v, want ErrBadSignature", workers, err)
			}
		}
		for i, raw := range raws {
			e, err := DecodeVerified(raw)
			if (err != nil) != bad[i] {
				t.Fatalf("entry %d: one-by-one verify says %v, batch says bad=%v", i, err, bad[i])
			}
			_ = e
		}
	}
}

// A signature whose S is not reduced (S + ℓ) verifies the same equation but
// is malleable: crypto/ed25519 refuses it, and so must both of the ledger's
// paths, or a third party could re-sign nothing yet make a second entry.
func TestNonCanonicalSIsRefused(t *testing.T) {
	es := receipts(t, 61, 8)
	order, _ := new(big.Int).SetString("7237005577332262213973186563042994240857116359379907606001950938285454250989", 10)
	e := es[4]
	le := func(b []byte) *big.Int {
		r := make([]byte, len(b))
		for i := range b {
			r[len(b)-1-i] = b[i]
		}
		return new(big.Int).SetBytes(r)
	}
	s := new(big.Int).Add(le(e.Sig[32:]), order)
	be := s.FillBytes(make([]byte, 32))
	sig := append([]byte(nil), e.Sig[:32]...)
	for i := range be {
		sig = append(sig, be[31-i])
	}
	raw := withSig(t, e, sig)
	msg, _ := e.signedMessage()
	pub, _ := pubKeyOf(e.Author)
	if stded.Verify(pub, msg, sig) {
		t.Fatal("crypto/ed25519 accepts S+ℓ: the test's signature is wrong")
	}
	if _, err := DecodeVerified(raw); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("one by one: %v, want ErrBadSignature", err)
	}
	raws := rawsOf(es)
	raws[4] = raw
	good, errs := verifyParallel(raws, nil, 1)
	if len(good) != len(es)-1 || len(errs) != 1 || !errors.Is(errs[0], ErrBadSignature) {
		t.Fatalf("batch: %d good, errors %v", len(good), errs)
	}
}

// Signatures made with crypto/ed25519 (what libp2p keys use) verify on both
// paths, and entries under authors whose signatures fail do not enter the
// key cache.
func TestVerifyPathsAgreeAndCacheOnlyGoodAuthors(t *testing.T) {
	es := receipts(t, 81, 10)
	for _, e := range es {
		if err := e.Verify(); err != nil {
			t.Fatal(err)
		}
	}
	if _, bad := verifyParallel(rawsOf(es), nil, 2); len(bad) != 0 {
		t.Fatal(bad)
	}
	// A made-up author: the entry of a fresh signer claimed by an unknown key.
	mallory := deterministicSigner(t, 99)
	stranger := deterministicSigner(t, 98)
	x := &Entry{Seq: 1, Kind: KindGrant, TimeNanos: 1, Body: mustBody(t, Grant{To: stranger.ID(), Amount: 5})}
	if err := mallory.Sign(x); err != nil {
		t.Fatal(err)
	}
	x.Author = stranger.ID()
	expandedKeys.Remove(stranger.ID())
	raws := [][]byte{encodeWire(t, x), encodeWire(t, x), encodeWire(t, x), encodeWire(t, x)}
	if good, _ := verifyParallel(raws, nil, 1); len(good) != 0 {
		t.Fatal("forged entries accepted")
	}
	if _, err := DecodeVerified(raws[0]); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("forged entry: %v", err)
	}
	if expandedKeys.Contains(stranger.ID()) {
		t.Fatal("the key of an author with no valid signature was cached")
	}
}

func mustBody(t *testing.T, v any) []byte {
	t.Helper()
	b, err := EncodeBody(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
