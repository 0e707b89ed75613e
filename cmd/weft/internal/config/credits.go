package config

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/weftgrid/weft/scheduler"
)

// Credits is an amount of money in the configuration: written in credits,
// as a string with at most six decimals ("0.001", "-1000") or a TOML
// float; held in micro-credits, the market's unit (1 credit = 1,000,000).
// A bare TOML integer other than 0 is refused: before this unit, prices and
// the credit limit were integers of micro-credits, and reading one such
// number as credits would silently multiply it by a million.
type Credits int64

// UnmarshalTOML reads a string or float of credits (see Credits).
func (c *Credits) UnmarshalTOML(v any) error {
	switch x := v.(type) {
	case string:
		p, err := ParseCredits(x)
		if err != nil {
			return err
		}
		*c = p
		return nil
	case float64:
		p, err := ParseCredits(strconv.FormatFloat(x, 'f', -1, 64))
		if err != nil {
			return err
		}
		*c = p
		return nil
	case int64:
		if x == 0 {
			*c = 0
			return nil
		}
		return fmt.Errorf("%d is a bare integer: write credits as a string: %q is what it meant before (micro-credits), %q is %d credits", x,
			scheduler.Amount(x).String(), strconv.FormatInt(x, 10), x)
	}
	return fmt.Errorf("%v: want credits as a string, e.g. \"0.001\"", v)
}

// String formats c in credits with six decimals.
func (c Credits) String() string { return scheduler.Amount(c).String() }

// ParseCredits parses a decimal number of credits, with at most six
// decimals and an optional sign ("0.001", "-1000", "+2.5").
func ParseCredits(s string) (Credits, error) {
	body, neg := strings.CutPrefix(s, "-")
	if !neg {
		body = strings.TrimPrefix(s, "+")
	}
	whole, frac, dot := strings.Cut(body, ".")
	digits := func(d string) bool { return strings.Trim(d, "0123456789") == "" }
	if whole == "" || dot && frac == "" || len(frac) > 6 || !digits(whole) || !digits(frac) {
		return 0, fmt.Errorf("%q: want credits, a decimal number with at most six decimals (0.001, -1000)", s)
	}
	w, err := strconv.ParseInt(whole, 10, 64)
	if err != nil || w > (1<<62)/1_000_000 {
		return 0, fmt.Errorf("%q: too many credits", s)
	}
	f, _ := strconv.ParseInt(frac+strings.Repeat("0", 6-len(frac)), 10, 64)
	v := w*1_000_000 + f
	if neg {
		v = -v
	}
	return Credits(v), nil
}

// Set parses s as credits (a flag value: ParseCredits).
func (c *Credits) Set(s string) error {
	p, err := ParseCredits(s)
	if err != nil {
		return err
	}
	*c = p
	return nil
}

// Type names the flag value's type in help texts.
func (c *Credits) Type() string { return "credits" }
