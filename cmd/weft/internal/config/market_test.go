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
per_core_hour = 2000
per_gib_hour = 100
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
