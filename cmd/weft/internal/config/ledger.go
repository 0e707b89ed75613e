package config

// LedgerConfig is the [ledger] section.
type LedgerConfig struct {
}

func defaultLedger() LedgerConfig {
	return LedgerConfig{}
}

func (c *LedgerConfig) validate() error { return nil }
