package config

import (
	"fmt"
	"time"
)

// RecipesConfig is the [recipes] section: the content store (recipes,
// artifacts, batch results under DATA_DIR/content) and the transfer of
// content between peers.
type RecipesConfig struct {
	// FetchTimeout bounds fetching a recipe or other content from the grid
	// for an API call (GET /v1/recipes/{cid}, GET /v1/content/{cid}). Go
	// duration string. Default "2m".
	FetchTimeout string `toml:"fetch_timeout"`
	// IdleTimeout fails a transfer from one provider (and moves on to the
	// next) when no data arrives for this long. Go duration string.
	// Default "20s".
	IdleTimeout string `toml:"idle_timeout"`
	// MaxServing bounds how many transfers this node serves at once; more
	// are refused with "busy" so the fetcher tries another provider.
	// Default 32.
	MaxServing int `toml:"max_serving"`
	// FetchParallel is how many providers one fetch downloads chunks from
	// at once (each needs up to 32 MiB of buffers while it streams).
	// Default 3; 1 asks one provider at a time.
	FetchParallel int `toml:"fetch_parallel"`
	// ReprovideInterval is how often the node re-announces the content it
	// provides in the DHT (provider records expire after 48h). Go duration
	// string. Default "12h".
	ReprovideInterval string `toml:"reprovide_interval"`
}

func defaultRecipes() RecipesConfig {
	return RecipesConfig{FetchTimeout: "2m", IdleTimeout: "20s", MaxServing: 32, FetchParallel: 3, ReprovideInterval: "12h"}
}

// RecipesDurations is the parsed durations of RecipesConfig.
type RecipesDurations struct {
	// Fetch, Idle and Reprovide are FetchTimeout, IdleTimeout and ReprovideInterval.
	Fetch, Idle, Reprovide time.Duration
}

// Durations parses the section's durations (validate has checked them).
func (c *RecipesConfig) Durations() RecipesDurations {
	f, _ := time.ParseDuration(c.FetchTimeout)
	i, _ := time.ParseDuration(c.IdleTimeout)
	r, _ := time.ParseDuration(c.ReprovideInterval)
	return RecipesDurations{Fetch: f, Idle: i, Reprovide: r}
}

func (c *RecipesConfig) validate() error {
	for _, d := range []struct{ key, v string }{
		{"fetch_timeout", c.FetchTimeout}, {"idle_timeout", c.IdleTimeout}, {"reprovide_interval", c.ReprovideInterval},
	} {
		v, err := time.ParseDuration(d.v)
		if err != nil || v <= 0 {
			return fmt.Errorf("recipes.%s: %q is not a positive duration (e.g. \"20s\")", d.key, d.v)
		}
	}
	if c.MaxServing < 1 || c.MaxServing > 4096 {
		return fmt.Errorf("recipes.max_serving: %d is out of range (1..4096)", c.MaxServing)
	}
	if c.FetchParallel < 1 || c.FetchParallel > 16 {
		return fmt.Errorf("recipes.fetch_parallel: %d is out of range (1..16)", c.FetchParallel)
	}
	return nil
}
