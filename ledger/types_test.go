package ledger

import (
	"bytes"
	"errors"
	"math"
	"reflect"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
)

func TestAmountRounding(t *testing.T) {
	p := Price{CPU: 1000, Mem: 3600, Disk: 7200, Net: 5}
	cases := []struct {
		u    Usage
		want uint64
	}{
		{Usage{}, 0},
		{Usage{CPUMillis: 1500}, 1500},             // 1.5 CPU-s × 1000
		{Usage{CPUMillis: 1}, 1},                   // 0.001 × 1000 = 1
		{Usage{MemByteSeconds: 1 << 30}, 1},        // 1 GiB·s at 3600/GiB·h = 1
		{Usage{MemByteSeconds: (1 << 30) - 1}, 0},  // floor
		{Usage{DiskByteSeconds: 3600 << 30}, 7200}, // 1 GiB·h
		{Usage{NetBytes: 3 << 29}, 7},              // 1.5 GiB × 5 = 7.5 → 7
		{Usage{CPUMillis: 2000, NetBytes: 1 << 30}, 2005},
	}
	for _, c := range cases {
		if got := Amount(p, c.u); got != c.want {
			t.Errorf("Amount(%+v) = %d, want %d", c.u, got, c.want)
		}
	}
	if got := Amount(Price{CPU: math.MaxUint64}, Usage{CPUMillis: math.MaxUint64}); got != math.MaxUint64 {
		t.Errorf("overflow: got %d, want saturation", got)
	}
	// 128-bit intermediate: product overflows 64 bits but the quotient does not.
	if got := Amount(Price{Net: 1 << 40}, Usage{NetBytes: 1 << 40}); got != 1<<50 {
		t.Errorf("wide product: got %d want %d", got, uint64(1)<<50)
	}
}

func testSigner(t testing.TB) *Signer {
	t.Helper()
	priv, _, err := crypto.GenerateEd25519Key(nil)
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewSigner(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestEntryRoundTrip(t *testing.T) {
	s := testSigner(t)
	c := Contract{InstanceID: "i1", Requester: s.ID(), Provider: s.ID(), Epoch: 1, Price: Price{CPU: 10}, SliceNanos: int64(time.Minute), StartNanos: 1}
	e, err := NewEntry(1, cidUndef(), time.Unix(5, 0), c)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Sign(e); err != nil {
		t.Fatal(err)
	}
	d, err := DecodeVerified(e.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if !d.CID().Equals(e.CID()) {
		t.Fatalf("cid %s != %s", d.CID(), e.CID())
	}
	got, err := d.Contract()
	if err != nil || !reflect.DeepEqual(got, c) {
		t.Fatalf("body %+v %v", got, err)
	}
	r := Receipt{Contract: e.CID(), InstanceID: "i1", Epoch: 1, Slice: 0, FromNanos: 1, ToNanos: 2, Usage: Usage{CPUMillis: 10}, Amount: 100}
	e2, _ := NewEntry(2, e.CID(), time.Unix(6, 0), r)
	if err := s.Sign(e2); err != nil {
		t.Fatal(err)
	}
	d2, err := DecodeVerified(e2.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	gr, err := d2.Receipt()
	if err != nil || !gr.Contract.Equals(e.CID()) || gr.Usage != r.Usage {
		t.Fatalf("receipt %+v %v", gr, err)
	}
	// Tampering with any byte breaks decode or verify.
	for i := range e2.Bytes() {
		b := append([]byte(nil), e2.Bytes()...)
		b[i] ^= 0x01
		if _, err := DecodeVerified(b); err == nil {
			t.Fatalf("byte %d flipped: accepted", i)
		}
	}
	// A signature over the same bytes without the domain prefix is refused.
	x, _ := NewEntry(1, cidUndef(), time.Unix(5, 0), c)
	x.Author = s.ID()
	msg, _ := x.unsignedBytes()
	x.Sig = signRaw(s, msg)
	if err := x.Verify(); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("undomained signature: %v", err)
	}
}

func TestSignedMessageFastPathMatchesEncoding(t *testing.T) {
	for _, e := range pool(t) {
		d, err := Decode(e.Bytes())
		if err != nil {
			t.Fatal(err)
		}
		fast, err := d.signedMessage()
		if err != nil {
			t.Fatal(err)
		}
		slow, err := d.unsignedBytes()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(fast, append([]byte(EntryDomain), slow...)) {
			t.Fatalf("fast signed message differs for %s", e.CID())
		}
	}
}
