package config

// RecipesConfig is the [recipes] section.
type RecipesConfig struct {
}

func defaultRecipes() RecipesConfig {
	return RecipesConfig{}
}

func (c *RecipesConfig) validate() error { return nil }
