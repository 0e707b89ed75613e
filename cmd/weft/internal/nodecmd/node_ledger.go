package nodecmd

import (
	"time"

	"github.com/spf13/pflag"

	"github.com/weftgrid/weft/cmd/weft/internal/config"
)

func init() {
	var slice time.Duration
	creditLimit := config.Default().Ledger.CreditLimit
	registerNodeFlags(nodeFlagHook{
		add: func(fs *pflag.FlagSet) {
			fs.DurationVar(&slice, "slice", config.Default().Ledger.SliceDuration(), "billing slice length, a grid setting (short slices for a test or demo grid) [ledger.slice]")
			fs.Var(&creditLimit, "credit-limit", "lowest requester balance (credits, may be negative) this node bids for [ledger.credit_limit]")
		},
		apply: func(fs *pflag.FlagSet, c *config.Config) error {
			if fs.Changed("slice") {
				c.Ledger.Slice = slice.String()
			}
			if fs.Changed("credit-limit") {
				c.Ledger.CreditLimit = creditLimit
			}
			return nil
		},
	})
}
