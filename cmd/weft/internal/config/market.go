package config

import (
	"fmt"
	"time"
)

// MarketConfig is the [market] section: this node's bidding policy and the
// timings of the auctions it runs. The node's labels are [node] labels; the
// credit limit is [ledger] credit_limit.
type MarketConfig struct {
	// Prices is the node's price list, in credits per hour.
	Prices MarketPrices `toml:"prices"`
	// MaxLoad is the fraction (0..1] of each resource (CPU, memory, disk)
	// this node lets instances use; a request that would push any resource
	// above it is declined. Default 1.
	MaxLoad float64 `toml:"max_load"`
	// Allow, if not empty, lists the only requesters (peer IDs) served.
	// Default empty = everyone.
	Allow []string `toml:"allow"`
	// Deny lists requesters (peer IDs) never served. Default empty.
	Deny []string `toml:"deny"`
	// VetoHook is a command (run with /bin/sh -c) that may veto a request
	// this node would bid on: it gets the announcement as JSON on stdin;
	// exit 0 allows, any other exit declines with the first line of its
	// output as the reason. Default "" = no hook.
	VetoHook string `toml:"veto_hook"`
	// VetoTimeout bounds one hook run; a hook that times out declines. Go
	// duration string. Default "5s".
	VetoTimeout string `toml:"veto_timeout"`
	// CheckCredit makes the node decline requesters whose ledger balance is
	// below [ledger] credit_limit. Default true.
	CheckCredit bool `toml:"check_credit"`
	// AuctionWindow is how long an auction this node runs stays open at
	// most. Go duration string, at most 1m. Default "500ms".
	AuctionWindow string `toml:"auction_window"`
	// EnoughBids closes an auction early once this many bids are in; 0
	// closes early only when every member answered. Default 0.
	EnoughBids int `toml:"enough_bids"`
	// AwardTimeout is how long a provider has to accept an award before the
	// next bid is awarded. Go duration string. Default "2s".
	AwardTimeout string `toml:"award_timeout"`
	// BidderSet, if > 0, sends each announcement directly to at most this
	// many members nearest the instance in the DHT keyspace instead of
	// gossiping it (for very large grids). Default 0 = gossip.
	BidderSet int `toml:"bidder_set"`
	// Grace is how long a host may be missing from the membership before
	// its instances are re-placed, unless a request sets its own (--sla
	// grace=...). Go duration string. Default "1s": long enough for a live
	// host to refute a stale "dead" notice (gossip a healed partition
	// replays), short against the membership's detection time. "0s"
	// re-places as soon as the membership declares the host dead.
	Grace string `toml:"grace"`
	// Guardians is how many guardians each request delegates re-placement
	// to while its requester is offline (0..16). Default 3.
	Guardians int `toml:"guardians"`
	// StatusInterval is how often a host re-sends an unchanged status to
	// the requester and guardians. Go duration string. Default "2s".
	StatusInterval string `toml:"status_interval"`
	// MaxRetries is how often a batch job is re-placed after a failure
	// (weft job run). Default 2.
	MaxRetries int `toml:"max_retries"`
}

// MarketPrices is the [market.prices] table: credits per hour, written as
// strings with at most six decimals ("0.001"; see Credits).
type MarketPrices struct {
	// PerCoreHour is the price of one CPU core (1000 millis) for an hour.
	// Default "0.001".
	PerCoreHour Credits `toml:"per_core_hour"`
	// PerGiBHour is the price of 1 GiB of memory for an hour. Default
	// "0.0005".
	PerGiBHour Credits `toml:"per_gib_hour"`
	// PerDiskGiBHour is the price of 1 GiB of disk for an hour. Default
	// "0.00001".
	PerDiskGiBHour Credits `toml:"per_disk_gib_hour"`
	// PerInstanceHour is a flat price per instance and hour. Default "0".
	PerInstanceHour Credits `toml:"per_instance_hour"`
}

func defaultMarket() MarketConfig {
	return MarketConfig{
		Prices:         MarketPrices{PerCoreHour: 1000, PerGiBHour: 500, PerDiskGiBHour: 10},
		MaxLoad:        1,
		VetoTimeout:    "5s",
		CheckCredit:    true,
		AuctionWindow:  "500ms",
		AwardTimeout:   "2s",
		Grace:          "1s",
		Guardians:      3,
		StatusInterval: "2s",
		MaxRetries:     2,
	}
}

// Durations returns the market's duration fields parsed (defaults for
// empty strings): veto timeout, auction window, award timeout, grace and
// status interval.
func (c MarketConfig) Durations() (veto, window, award, grace, status time.Duration) {
	p := func(s string, def time.Duration) time.Duration {
		d, err := time.ParseDuration(s)
		if s == "" || err != nil {
			return def
		}
		return d
	}
	return p(c.VetoTimeout, 5*time.Second), p(c.AuctionWindow, 500*time.Millisecond), p(c.AwardTimeout, 2*time.Second),
		p(c.Grace, 0), p(c.StatusInterval, 2*time.Second)
}

func (c *MarketConfig) validate() error {
	for name, s := range map[string]string{"veto_timeout": c.VetoTimeout, "auction_window": c.AuctionWindow,
		"award_timeout": c.AwardTimeout, "grace": c.Grace, "status_interval": c.StatusInterval} {
		if s == "" {
			continue
		}
		d, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("market.%s: %w", name, err)
		}
		if d < 0 || (name != "grace" && d == 0) {
			return fmt.Errorf("market.%s: %s must be positive", name, s)
		}
		if name == "auction_window" && d > time.Minute {
			return fmt.Errorf("market.auction_window: %s is over 1m", s)
		}
	}
	p := c.Prices
	switch {
	case p.PerCoreHour < 0 || p.PerGiBHour < 0 || p.PerDiskGiBHour < 0 || p.PerInstanceHour < 0:
		return fmt.Errorf("market.prices: prices must not be negative")
	case c.MaxLoad < 0 || c.MaxLoad > 1:
		return fmt.Errorf("market.max_load: %v outside (0, 1]", c.MaxLoad)
	case c.EnoughBids < 0 || c.BidderSet < 0:
		return fmt.Errorf("market: enough_bids and bidder_set must not be negative")
	case c.Guardians < 0 || c.Guardians > 16:
		return fmt.Errorf("market.guardians: %d outside 0..16", c.Guardians)
	case c.MaxRetries < 0 || c.MaxRetries > 100:
		return fmt.Errorf("market.max_retries: %d outside 0..100", c.MaxRetries)
	}
	return nil
}
