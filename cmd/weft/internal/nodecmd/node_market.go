package nodecmd

import (
	"fmt"
	"strings"

	"github.com/spf13/pflag"

	"github.com/weftgrid/weft/cmd/weft/internal/config"
)

// Market flags of `weft node` (the [market] section; --label is [node] labels).
func init() {
	var (
		prices                  []string
		maxLoad                 float64
		allow, deny             []string
		vetoHook, window, grace string
		enoughBids, bidderSet   int
		guardians, maxRetries   int
	)
	registerNodeFlags(nodeFlagHook{
		add: func(fs *pflag.FlagSet) {
			fs.StringArrayVar(&prices, "price", nil, "price KEY=CREDITS per hour (at most six decimals), repeatable; keys core, gib, disk_gib, instance [market.prices]")
			fs.Float64Var(&maxLoad, "max-load", 1, "fraction (0..1] of each resource instances may use [market.max_load]")
			fs.StringArrayVar(&allow, "allow-requester", nil, "serve only these requesters (peer IDs), repeatable [market.allow]")
			fs.StringArrayVar(&deny, "deny-requester", nil, "never serve these requesters (peer IDs), repeatable [market.deny]")
			fs.StringVar(&vetoHook, "veto-hook", "", "command that may veto a request: announcement JSON on stdin, exit 0 allows [market.veto_hook]")
			fs.StringVar(&window, "auction-window", "", "how long this node's auctions stay open, e.g. 500ms [market.auction_window]")
			fs.IntVar(&enoughBids, "enough-bids", 0, "close an auction once this many bids are in (0: when every member answered) [market.enough_bids]")
			fs.IntVar(&bidderSet, "bidder-set", 0, "announce directly to this many nearest members instead of gossip (0: gossip) [market.bidder_set]")
			fs.StringVar(&grace, "grace", "", "how long a silent host may be missing before its instances move, e.g. 2s [market.grace]")
			fs.IntVar(&guardians, "guardians", 3, "guardians that may re-place this node's instances while it is offline [market.guardians]")
			fs.IntVar(&maxRetries, "max-retries", 2, "re-placements of a failed batch job [market.max_retries]")
		},
		apply: func(fs *pflag.FlagSet, c *config.Config) error {
			m := &c.Market
			for _, p := range prices {
				k, v, ok := strings.Cut(p, "=")
				n, err := config.ParseCredits(v)
				if !ok || err != nil || n < 0 {
					return fmt.Errorf("--price %q: want KEY=CREDITS (core, gib, disk_gib or instance; credits per hour, at most six decimals, e.g. core=0.001)", p)
				}
				switch k {
				case "core":
					m.Prices.PerCoreHour = n
				case "gib":
					m.Prices.PerGiBHour = n
				case "disk_gib":
					m.Prices.PerDiskGiBHour = n
				case "instance":
					m.Prices.PerInstanceHour = n
				default:
					return fmt.Errorf("--price %q: unknown key %q (want core, gib, disk_gib or instance)", p, k)
				}
			}
			if fs.Changed("max-load") {
				m.MaxLoad = maxLoad
			}
			if fs.Changed("allow-requester") {
				m.Allow = allow
			}
			if fs.Changed("deny-requester") {
				m.Deny = deny
			}
			if fs.Changed("veto-hook") {
				m.VetoHook = vetoHook
			}
			if fs.Changed("auction-window") {
				m.AuctionWindow = window
			}
			if fs.Changed("enough-bids") {
				m.EnoughBids = enoughBids
			}
			if fs.Changed("bidder-set") {
				m.BidderSet = bidderSet
			}
			if fs.Changed("grace") {
				m.Grace = grace
			}
			if fs.Changed("guardians") {
				m.Guardians = guardians
			}
			if fs.Changed("max-retries") {
				m.MaxRetries = maxRetries
			}
			return nil
		},
	})
}
