// Package config is weft's node configuration: a TOML file (--config) whose
// every key is also a flag of 'weft node'. Each section has its own file,
// its own defaults and its own validation. docs/config.md documents every key.
package config

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/BurntSushi/toml"
)

// Config is the whole node configuration.
type Config struct {
	// Node holds identity, networking and API settings (section [node]).
	Node NodeConfig `toml:"node"`
	// Recipes holds recipe store and transfer settings (section [recipes]).
	Recipes RecipesConfig `toml:"recipes"`
	// Partitions holds the local runtime settings (section [partitions]).
	Partitions PartitionsConfig `toml:"partitions"`
	// Market holds auction and node policy settings (section [market]).
	Market MarketConfig `toml:"market"`
	// Ledger holds ledger settings (section [ledger]).
	Ledger LedgerConfig `toml:"ledger"`
}

// Default returns the configuration used when no file and no flag says otherwise.
func Default() Config {
	return Config{
		Node:       defaultNode(),
		Recipes:    defaultRecipes(),
		Partitions: defaultPartitions(),
		Market:     defaultMarket(),
		Ledger:     defaultLedger(),
	}
}

// ErrConfig prefixes every configuration error.
var ErrConfig = errors.New("config")

// Load reads path over the defaults. Unknown keys are an error naming them.
func Load(path string) (Config, error) {
	c := Default()
	if path == "" {
		return c, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return c, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	md, err := toml.Decode(string(b), &c)
	if err != nil {
		return c, fmt.Errorf("%w: %s: %w", ErrConfig, path, err)
	}
	if und := md.Undecoded(); len(und) > 0 {
		keys := make([]string, len(und))
		for i, k := range und {
			keys[i] = k.String()
		}
		return c, fmt.Errorf("%w: %s: unknown keys: %s", ErrConfig, path, strings.Join(keys, ", "))
	}
	return c, nil
}

// Validate checks every section.
func (c *Config) Validate() error {
	for _, v := range []func() error{c.Node.validate, c.Recipes.validate, c.Partitions.validate, c.Market.validate, c.Ledger.validate} {
		if err := v(); err != nil {
			return fmt.Errorf("%w: %w", ErrConfig, err)
		}
	}
	return nil
}
