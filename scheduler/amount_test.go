package scheduler

import (
	"encoding/json"
	"errors"
	"math"
	"testing"
)

// In JSON an Amount is pico-credits (the one money unit of every JSON
// figure); it reads back exactly.
func TestAmountJSONIsPicoCredits(t *testing.T) {
	for a, want := range map[Amount]string{0: "0", 1: "1000000", 1000: "1000000000", -1_500_000: "-1500000000000",
		math.MaxInt64: "9223372036854775807000000", math.MinInt64: "-9223372036854775808000000"} {
		b, err := json.Marshal(a)
		if err != nil || string(b) != want {
			t.Errorf("Marshal(%d) = %s, %v; want %s", a, b, err, want)
			continue
		}
		var back Amount
		if err := json.Unmarshal(b, &back); err != nil || back != a {
			t.Errorf("Unmarshal(%s) = %d, %v; want %d", b, back, err, a)
		}
	}
	for _, in := range []string{"1", "999999", "1.5", `"1000000"`, "1e6", "-", "99999999999999999999000000"} {
		var a Amount
		if err := json.Unmarshal([]byte(in), &a); err == nil {
			t.Errorf("Unmarshal(%s) = %d, want an error", in, a)
		} else if in != `"1000000"` && in != "-" && !errors.Is(err, ErrMalformed) {
			t.Errorf("Unmarshal(%s): %v, want ErrMalformed", in, err)
		}
	}
	if got := Amount(math.MinInt64).String(); got != "-9223372036854.775808" {
		t.Errorf("String of the most negative amount: %s", got)
	}
	b, _ := json.Marshal(BidView{Node: "n", Price: 2500})
	if string(b) != `{"node":"n","price":2500000000,"fit":0,"rtt_ms":0}` {
		t.Errorf("a bid view in JSON: %s", b)
	}
}

// Whatever PicoToMicro accepts is a whole number of micro-credits that
// MarshalJSON writes back as the same number.
func FuzzPicoToMicro(f *testing.F) {
	for _, s := range []string{"0", "1000000", "-2000000", "000", "1", "-0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, err := PicoToMicro(s)
		if err != nil {
			return
		}
		b, _ := json.Marshal(a)
		back, err := PicoToMicro(string(b))
		if err != nil || back != a {
			t.Fatalf("%q → %d → %s → %d, %v", s, a, b, back, err)
		}
	})
}
