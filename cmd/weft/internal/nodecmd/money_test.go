package nodecmd

import (
	"strings"
	"testing"

	"github.com/spf13/pflag"

	"github.com/weftgrid/weft/cmd/weft/internal/config"
)

// parseNodeFlags applies args to the default config as 'weft node' does.
func parseNodeFlags(t *testing.T, args ...string) (config.Config, error) {
	t.Helper()
	fs := pflag.NewFlagSet("node", pflag.ContinueOnError)
	for _, h := range nodeFlagHooks {
		h.add(fs)
	}
	cfg := config.Default()
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	for _, h := range nodeFlagHooks {
		if err := h.apply(fs, &cfg); err != nil {
			return cfg, err
		}
	}
	return cfg, nil
}

// Money flags take credits: --credit-limit (negative too) and --price.
func TestMoneyFlagsAreCredits(t *testing.T) {
	cfg, err := parseNodeFlags(t, "--credit-limit", "-2.5", "--price", "core=0.002", "--price", "instance=1")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Ledger.CreditLimit != -2_500_000 || cfg.Market.Prices.PerCoreHour != 2_000 || cfg.Market.Prices.PerInstanceHour != 1_000_000 {
		t.Fatalf("credit limit %d µcr, prices %+v", cfg.Ledger.CreditLimit, cfg.Market.Prices)
	}
	if cfg.Market.Prices.PerGiBHour != config.Default().Market.Prices.PerGiBHour {
		t.Fatalf("an unset price changed: %+v", cfg.Market.Prices)
	}
	for _, args := range [][]string{{"--price", "core=-1"}, {"--price", "core=0.0000001"}, {"--credit-limit", "1e3"}, {"--price", "cpu=1"}} {
		if _, err := parseNodeFlags(t, args...); err == nil {
			t.Errorf("%v: accepted", args)
		} else if !strings.Contains(err.Error(), "credits") && !strings.Contains(err.Error(), "CREDITS") && !strings.Contains(err.Error(), "unknown key") {
			t.Errorf("%v: %v, want an error about credits", args, err)
		}
	}
}
