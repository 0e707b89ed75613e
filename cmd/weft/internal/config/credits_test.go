package config

import "testing"

// Whatever ParseCredits accepts, String shows back as the same amount.
func FuzzParseCredits(f *testing.F) {
	for _, s := range []string{"0", "-1000", "+0.5", "0.000001", "1.", "4611686018427"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseCredits(s)
		if err != nil {
			return
		}
		back, err := ParseCredits(c.String())
		if err != nil || back != c {
			t.Fatalf("%q → %d → %q → %d, %v", s, c, c.String(), back, err)
		}
	})
}
