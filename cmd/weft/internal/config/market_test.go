package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/weftgrid/weft/ledger"
	"github.com/weftgrid/weft/ledger/settle"
	"github.com/weftgrid/weft/scheduler"
)

func TestMarketConfigFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "weft.toml")
	body := `
[market]
max_load = 0.5
allow = ["12D3KooWPgvoevtrKuKLZ9Ykokvzs5HQcffdCqYt65YfASp1gA9z"]
veto_hook = "exit 0"
auction_window = "2s"
enough_bids = 3
grace = "5s"

[market.prices]
per_core_hour = "0.002"
per_gib_hour = 0.0001
`
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	m := c.Market
	if m.MaxLoad != 0.5 || len(m.Allow) != 1 || m.VetoHook != "exit 0" || m.EnoughBids != 3 ||
		m.Prices.PerCoreHour != 2000 || m.Prices.PerGiBHour != 100 || m.Prices.PerDiskGiBHour != 10 || m.Guardians != 3 {
		t.Fatalf("loaded %+v", m)
	}
	veto, window, award, grace, status := m.Durations()
	if veto != 5*time.Second || window != 2*time.Second || award != 2*time.Second || grace != 5*time.Second || status != 2*time.Second {
		t.Fatalf("durations %v %v %v %v %v", veto, window, award, grace, status)
	}
}

// Money in the configuration is credits: strings or floats with at most six
// decimals. A bare integer other than 0 is refused with what it meant
// before (micro-credits), never read as a million times more.
func TestConfigCredits(t *testing.T) {
	load := func(body string) (Config, error) {
		p := filepath.Join(t.TempDir(), "weft.toml")
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return Load(p)
	}
	c, err := load("[ledger]\ncredit_limit = \"-12.5\"\n[market.prices]\nper_instance_hour = 0\nper_disk_gib_hour = \"1\"\n")
	if err != nil {
		t.Fatal(err)
	}
	if c.Ledger.CreditLimit != -12_500_000 || c.Market.Prices.PerInstanceHour != 0 || c.Market.Prices.PerDiskGiBHour != 1_000_000 {
		t.Fatalf("credit limit %d µcr, prices %+v", c.Ledger.CreditLimit, c.Market.Prices)
	}
	if got := c.Ledger.CreditLimit.String(); got != "-12.500000" {
		t.Fatalf("credit limit shows as %q", got)
	}
	for body, want := range map[string]string{
		"[ledger]\ncredit_limit = -1000000000\n":           `"-1000.000000"`,
		"[market.prices]\nper_core_hour = 1000\n":          `"0.001000"`,
		"[market.prices]\nper_core_hour = \"0.0000001\"\n": "at most six decimals",
		"[market.prices]\nper_core_hour = \"1,5\"\n":       "at most six decimals",
		"[market.prices]\nper_core_hour = true\n":          "want credits",
	} {
		if _, err := load(body); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: error %v, want one saying %s", body, err, want)
		}
	}
	for s, want := range map[string]Credits{"0": 0, "+2": 2_000_000, "-0.000001": -1, "3.": 0, ".5": 0, "": 0, "1e3": 0} {
		got, err := ParseCredits(s)
		if bad := want == 0 && s != "0"; bad != (err != nil) || !bad && got != want {
			t.Errorf("ParseCredits(%q) = %d, %v", s, got, err)
		}
	}
}

func TestMarketConfigValidate(t *testing.T) {
	d := defaultMarket()
	if err := d.validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	for name, f := range map[string]func(*MarketConfig){
		"negative price":  func(c *MarketConfig) { c.Prices.PerCoreHour = -1 },
		"max load":        func(c *MarketConfig) { c.MaxLoad = 1.5 },
		"window too long": func(c *MarketConfig) { c.AuctionWindow = "2m" },
		"bad duration":    func(c *MarketConfig) { c.Grace = "soon" },
		"zero timeout":    func(c *MarketConfig) { c.VetoTimeout = "0s" },
		"guardians":       func(c *MarketConfig) { c.Guardians = 17 },
		"retries":         func(c *MarketConfig) { c.MaxRetries = -1 },
	} {
		c := defaultMarket()
		f(&c)
		err := c.validate()
		if err == nil || !strings.Contains(err.Error(), "market") {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// A small web server metered over a one-second slice, at the default
// market prices, bills a non-zero amount.
func TestDefaultPricesBillAMeteredSlice(t *testing.T) {
	mc := Default().Market.Prices
	price := settle.Price(scheduler.PriceList{PerCoreHour: scheduler.Amount(mc.PerCoreHour), PerGiBHour: scheduler.Amount(mc.PerGiBHour),
		PerDiskGiBHour: scheduler.Amount(mc.PerDiskGiBHour), PerInstanceHour: scheduler.Amount(mc.PerInstanceHour)})
	// 1.5 ms CPU, 1.8 MB average, 2 MiB peak, 12 KiB disk, over 1 s.
	u := settle.UsageFromMeter(1_500_321, 1_817_039, 2<<20, 12_288, -1, time.Second)
	if amt := ledger.Amount(price, u); amt == 0 {
		t.Fatalf("a running instance billed 0 over a 1 s slice at %+v", price)
	}
}
