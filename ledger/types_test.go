package ledger

import (
	"bytes"
	"errors"
	"math"
	"math/big"
	"reflect"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"pgregory.net/rapid"
)

func TestAmountRounding(t *testing.T) {
	// Prices are µcr per hour-unit; amounts are pico-credits.
	p := Price{CPU: 3600, Mem: 9, Disk: 7200, Net: 5}
	cases := []struct {
		u    Usage
		want uint64
	}{
		{Usage{}, 0},
		{Usage{CPUMicros: 1500}, 1500},                   // 1.5 ms at 1 µcr/s = 0.0015 µcr
		{Usage{CPUMicros: 1}, 1},                         // 1 µs at 1 µcr/s = 1 pcr
		{Usage{MemByteSeconds: 1 << 30}, 2500},           // 1 GiB·s at 9 µcr/GiB·h = 0.0025 µcr
		{Usage{MemByteSeconds: (1 << 30) - 1}, 2499},     // floor
		{Usage{DiskByteSeconds: 3600 << 30}, 7200 * 1e6}, // 1 GiB·h
		{Usage{NetBytes: 3 << 29}, 7_500_000},            // 1.5 GiB × 5 µcr
		{Usage{NetBytes: 1}, 0},                          // 1e6/2^30 × 5 pcr → floor 0
		{Usage{CPUMicros: 2000, NetBytes: 1 << 30}, 2000 + 5_000_000},
	}
	for _, c := range cases {
		if got := Amount(p, c.u); got != c.want {
			t.Errorf("Amount(%+v) = %d, want %d", c.u, got, c.want)
		}
	}
	if got := Amount(Price{CPU: math.MaxUint64}, Usage{CPUMicros: math.MaxUint64}); got != math.MaxUint64 {
		t.Errorf("overflow: got %d, want saturation", got)
	}
	// 128-bit intermediate: product overflows 64 bits but the result does not.
	if got, want := Amount(Price{Net: 1 << 30}, Usage{NetBytes: 1 << 40}), uint64(15625)<<46; got != want {
		t.Errorf("wide product: got %d want %d", got, want)
	}
}

// amountRef is Amount computed independently with math/big from the unit
// definitions: floor(usage × price × 10^6 pcr/µcr ÷ units per price unit)
// per resource, summed (nil when above 2^64-1).
func amountRef(p Price, u Usage) *big.Int {
	term := func(units, price uint64, per *big.Int) *big.Int {
		n := new(big.Int).Mul(new(big.Int).SetUint64(units), new(big.Int).SetUint64(price))
		n.Mul(n, big.NewInt(PicoPerMicro))
		return n.Quo(n, per)
	}
	gib := new(big.Int).Lsh(big.NewInt(1), 30)
	gibHour := new(big.Int).Mul(gib, big.NewInt(3600))
	sum := new(big.Int)
	sum.Add(sum, term(u.CPUMicros, p.CPU, big.NewInt(3600*1_000_000)))
	sum.Add(sum, term(u.MemByteSeconds, p.Mem, gibHour))
	sum.Add(sum, term(u.DiskByteSeconds, p.Disk, gibHour))
	sum.Add(sum, term(u.NetBytes, p.Net, gib))
	return sum
}

func TestAmountMatchesPriceTimesUsage(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		small := rapid.Uint64Range(0, 1<<40)
		p := Price{CPU: small.Draw(t, "cpu_price"), Mem: small.Draw(t, "mem_price"), Disk: small.Draw(t, "disk_price"), Net: small.Draw(t, "net_price")}
		u := Usage{CPUMicros: small.Draw(t, "cpu"), MemByteSeconds: small.Draw(t, "mem"), DiskByteSeconds: small.Draw(t, "disk"), NetBytes: small.Draw(t, "net")}
		want := amountRef(p, u)
		got := Amount(p, u)
		if want.IsUint64() {
			if got != want.Uint64() {
				t.Fatalf("Amount(%+v, %+v) = %d, want %s", p, u, got, want)
			}
		} else if got != math.MaxUint64 {
			t.Fatalf("Amount(%+v, %+v) = %d, want saturation (%s)", p, u, got, want)
		}
	})
}

func TestCreditsAndMicroFloor(t *testing.T) {
	for in, want := range map[uint64]string{0: "0.000000", 790: "0.000000", 790_000: "0.000001", 12_500_000_000_000: "12.500000", 1_499_999: "0.000001", 1_500_000: "0.000002", math.MaxUint64: "18446744.073710"} {
		if got := Credits(in); got != want {
			t.Errorf("Credits(%d) = %q, want %q", in, got, want)
		}
	}
	for in, want := range map[int64]string{-12_500_000_000_000: "-12.500000", math.MinInt64: "-9223372.036855", 5: "0.000000"} {
		if got := SignedCredits(in); got != want {
			t.Errorf("SignedCredits(%d) = %q, want %q", in, got, want)
		}
	}
	for in, want := range map[int64]int64{0: 0, 999_999: 0, 1_000_000: 1, -1: -1, -1_000_000: -1, -1_000_001: -2} {
		if got := MicroFloor(in); got != want {
			t.Errorf("MicroFloor(%d) = %d, want %d", in, got, want)
		}
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
	r := Receipt{Contract: e.CID(), InstanceID: "i1", Epoch: 1, Slice: 0, FromNanos: 1, ToNanos: 2, Usage: Usage{CPUMicros: 10}, Amount: 100}
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
