package ledger

import (
	"encoding/json"
	"errors"
	"math"
	"strings"
	"testing"
)

// Prices are signed in micro-credits but shown in JSON, like every money
// figure, in pico-credits; the JSON form reads back to the same prices.
func TestPriceJSONIsPicoCredits(t *testing.T) {
	p := Price{CPU: 1000, Mem: 500, Disk: 10, Net: math.MaxUint64}
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"cpu_per_core_h":1000000000,"mem_per_gib_h":500000000,"disk_per_gib_h":10000000,"net_per_gib":18446744073709551615000000}`
	if string(b) != want {
		t.Fatalf("JSON %s, want %s", b, want)
	}
	var q Price
	if err := json.Unmarshal(b, &q); err != nil || q != p {
		t.Fatalf("read back %+v, %v; want %+v", q, err, p)
	}
	if err := json.Unmarshal([]byte(`{"cpu_per_core_h":1000}`), &q); !errors.Is(err, ErrMalformed) {
		t.Fatalf("a price of 1000 pico-credits (not a whole micro-credit): %v", err)
	}
	if err := json.Unmarshal([]byte(`{"cpu_per_core_h":0,"net_per_gib":0}`), &q); err != nil || q != (Price{}) {
		t.Fatalf("zero prices: %+v, %v", q, err)
	}
}

func TestParseCredits(t *testing.T) {
	for in, want := range map[string]uint64{"0": 0, "12": 12 * PicoPerCredit, "0.5": PicoPerCredit / 2, "0.000001": PicoPerMicro,
		"007.250000": 7_250_000 * PicoPerMicro, ".5": PicoPerCredit / 2, "18446744.073709": 18_446_744_073_709 * PicoPerMicro} {
		if got, err := ParseCredits(in); err != nil || got != want {
			t.Errorf("ParseCredits(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", ".", "1.", "-1", "+1", "1.0000001", "1e3", "1,5", " 1", "18446744.073710", "99999999999999999999"} {
		if got, err := ParseCredits(in); !errors.Is(err, ErrMalformed) {
			t.Errorf("ParseCredits(%q) = %d, %v; want an error", in, got, err)
		}
	}
}

// Whatever ParseCredits accepts, Credits shows back exactly (six decimals).
func FuzzParseCredits(f *testing.F) {
	for _, s := range []string{"0", "12.5", ".000001", "18446744.073709", "1.", "-3"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := ParseCredits(s)
		if err != nil {
			return
		}
		if v%PicoPerMicro != 0 {
			t.Fatalf("%q parsed to %d pico-credits, not a whole micro-credit", s, v)
		}
		back, err := ParseCredits(Credits(v))
		if err != nil || back != v {
			t.Fatalf("%q → %d → %q → %d, %v", s, v, Credits(v), back, err)
		}
		whole, _, _ := strings.Cut(strings.TrimLeft(s, "0"), ".")
		if len(whole) > 8 {
			t.Fatalf("%q: %d credits accepted", s, v)
		}
	})
}

// Whatever Price's JSON form accepts reads back the same after writing.
func FuzzPriceJSON(f *testing.F) {
	for _, s := range []string{`{"cpu_per_core_h":1000000000}`, `{"net_per_gib":18446744073709551615000000}`, `{"mem_per_gib_h":"5"}`, `{}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var p Price
		if json.Unmarshal([]byte(s), &p) != nil {
			return
		}
		b, err := json.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		var q Price
		if err := json.Unmarshal(b, &q); err != nil || q != p {
			t.Fatalf("%s → %+v → %s → %+v, %v", s, p, b, q, err)
		}
	})
}
