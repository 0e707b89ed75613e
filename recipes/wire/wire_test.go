package wire

import (
	"bytes"
	"crypto/ed25519"
	"testing"
)

func TestMessageIsDomainZeroParts(t *testing.T) {
	got := Message("weft/x/v1", []byte("ab"), nil, []byte("c"))
	if want := []byte("weft/x/v1\x00abc"); !bytes.Equal(got, want) {
		t.Fatalf("%q, want %q", got, want)
	}
}

// A signature verifies for its domain and parts only.
func TestSignaturesAreDomainSeparated(t *testing.T) {
	pub, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	sig := Sign(priv, "weft/a/v1", []byte("body"))
	if !Verify(pub, sig, "weft/a/v1", []byte("body")) {
		t.Fatal("a signature does not verify")
	}
	if !Verify(pub, sig, "weft/a/v1", []byte("bo"), []byte("dy")) {
		t.Fatal("the same bytes split differently do not verify")
	}
	for name, ok := range map[string]bool{
		"other domain": Verify(pub, sig, "weft/b/v1", []byte("body")),
		"other body":   Verify(pub, sig, "weft/a/v1", []byte("bodY")),
		"domain shift": Verify(pub, sig, "weft/a/v1\x00b", []byte("ody")),
		"short sig":    Verify(pub, sig[:10], "weft/a/v1", []byte("body")),
		"short key":    Verify(pub[:10], sig, "weft/a/v1", []byte("body")),
	} {
		if ok {
			t.Errorf("%s: verifies", name)
		}
	}
}

// The shared decoding refuses duplicate keys, indefinite lengths, unknown
// fields and what is over its limits; the encoding is deterministic.
func TestStrictDecodingAndDeterministicEncoding(t *testing.T) {
	type msg struct {
		A int `cbor:"a"`
		B int `cbor:"b"`
	}
	dec := MustDecMode(DecOptions(Limits{Nesting: 4, Elements: 16, MapPairs: 16}))
	b, err := Enc.Marshal(map[string]int{"b": 2, "a": 1})
	if err != nil {
		t.Fatal(err)
	}
	if b2, _ := Enc.Marshal(msg{A: 1, B: 2}); !bytes.Equal(b, b2) {
		t.Fatalf("a map and a struct of the same value encode differently: %x %x", b, b2)
	}
	var m msg
	if err := dec.Unmarshal(b, &m); err != nil || m != (msg{1, 2}) {
		t.Fatalf("round trip: %+v %v", m, err)
	}
	for name, in := range map[string][]byte{
		"duplicate key": {0xa2, 0x61, 'a', 0x01, 0x61, 'a', 0x02},
		"indefinite":    {0xbf, 0x61, 'a', 0x01, 0xff},
		"unknown field": {0xa1, 0x61, 'c', 0x01},
	} {
		if err := dec.Unmarshal(in, &m); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	var arr []int
	if err := dec.Unmarshal(append([]byte{0x91}, bytes.Repeat([]byte{1}, 17)...), &arr); err == nil {
		t.Error("an array over the limit: accepted")
	}
}
