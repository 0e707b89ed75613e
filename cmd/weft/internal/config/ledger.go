package config

import (
	"fmt"
	"math"
	"time"
)

// LedgerFile is the ledger's bbolt file inside the data directory.
const LedgerFile = "ledger.db"

// LedgerConfig is the [ledger] section: slices, replication and credit.
type LedgerConfig struct {
	// Slice is the billing slice length, a grid setting: every running
	// instance yields one receipt per slice. Go duration string. Default "60s";
	// 'weft node --slice 2s' shortens it for a test or demo grid.
	Slice string `toml:"slice"`
	// AntiEntropy is the interval between anti-entropy exchanges with a
	// random connected peer (plus one with each newly connected peer). Go
	// duration string. Default "1s".
	AntiEntropy string `toml:"anti_entropy"`
	// CreditLimit is the lowest balance, in credits (a string with at most
	// six decimals; may be negative), a requester may have for this node
	// to bid on its requests. Default "-1000" (1000 credits of debt); the
	// market enforces it.
	CreditLimit Credits `toml:"credit_limit"`
	// CheckpointSlices is how many slices apart this node appends a
	// checkpoint (the root and entry count of the ledger it holds) to its
	// log; 0 disables. Default 10 (10 minutes with 60 s slices).
	CheckpointSlices int `toml:"checkpoint_slices"`
	// Granters are the peer IDs whose grants count in balances on the
	// public grid. Default none = no grant counts. Ignored on a private
	// grid (its founder and the grid file's granters count).
	Granters []string `toml:"granters"`
}

func defaultLedger() LedgerConfig {
	return LedgerConfig{Slice: "60s", AntiEntropy: "1s", CreditLimit: -1_000_000_000, CheckpointSlices: 10}
}

// SliceDuration is Slice parsed (60 s if empty).
func (c LedgerConfig) SliceDuration() time.Duration {
	d, err := time.ParseDuration(c.Slice)
	if err != nil || c.Slice == "" {
		return 60 * time.Second
	}
	return d
}

// AntiEntropyDuration is AntiEntropy parsed (1 s if empty).
func (c LedgerConfig) AntiEntropyDuration() time.Duration {
	d, err := time.ParseDuration(c.AntiEntropy)
	if err != nil || c.AntiEntropy == "" {
		return time.Second
	}
	return d
}

// CheckpointInterval is CheckpointSlices × the slice length (0: disabled).
// A product beyond time.Duration's range (e.g. 200000 slices of 24h, both
// valid) is capped at the longest duration rather than wrapping around to
// a negative (checkpoints silently off) or tiny (a checkpoint every few
// microseconds) interval.
func (c LedgerConfig) CheckpointInterval() time.Duration {
	if c.CheckpointSlices <= 0 {
		return 0
	}
	slice := c.SliceDuration()
	if slice > 0 && time.Duration(c.CheckpointSlices) > math.MaxInt64/slice {
		return math.MaxInt64
	}
	return time.Duration(c.CheckpointSlices) * slice
}

func (c *LedgerConfig) validate() error {
	if c.CheckpointSlices < 0 || c.CheckpointSlices > 1_000_000 {
		return fmt.Errorf("ledger.checkpoint_slices: %d outside [0, 1000000]", c.CheckpointSlices)
	}
	if c.Slice != "" {
		d, err := time.ParseDuration(c.Slice)
		if err != nil {
			return fmt.Errorf("ledger.slice: %w", err)
		}
		if d < 100*time.Millisecond || d > 24*time.Hour {
			return fmt.Errorf("ledger.slice: %s outside [100ms, 24h]", d)
		}
	}
	if c.AntiEntropy != "" {
		d, err := time.ParseDuration(c.AntiEntropy)
		if err != nil {
			return fmt.Errorf("ledger.anti_entropy: %w", err)
		}
		if d < 10*time.Millisecond {
			return fmt.Errorf("ledger.anti_entropy: %s below 10ms", d)
		}
	}
	return nil
}
