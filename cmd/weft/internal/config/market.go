package config

// MarketConfig is the [market] section.
type MarketConfig struct {
}

func defaultMarket() MarketConfig {
	return MarketConfig{}
}

func (c *MarketConfig) validate() error { return nil }
