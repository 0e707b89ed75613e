package demo

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// ErrNoRecipes means the example recipes could not be found.
var ErrNoRecipes = errors.New("demo: example recipes not found")

// demoRecipes are the example recipes the demo publishes, by file name.
var demoRecipes = []string{"webserver.toml", "primes.toml"}

// findRecipesDir returns the folder holding every file of demoRecipes: the
// configured one, else recipes/examples in the working directory or one of
// its parents, else next to the binary (bin/weft → ../recipes/examples).
func findRecipesDir(configured, bin string) (string, error) {
	if configured != "" {
		if err := hasRecipes(configured); err != nil {
			return "", err
		}
		return configured, nil
	}
	var tried []string
	try := func(dir string) bool {
		d := filepath.Join(dir, "recipes", "examples")
		tried = append(tried, d)
		return hasRecipes(d) == nil
	}
	if wd, err := os.Getwd(); err == nil {
		for dir := wd; ; dir = filepath.Dir(dir) {
			if try(dir) {
				return filepath.Join(dir, "recipes", "examples"), nil
			}
			if filepath.Dir(dir) == dir {
				break
			}
		}
	}
	if bin != "" {
		if exe, err := filepath.EvalSymlinks(bin); err == nil {
			dir := filepath.Dir(filepath.Dir(exe))
			if try(dir) {
				return filepath.Join(dir, "recipes", "examples"), nil
			}
		}
	}
	return "", fmt.Errorf("%w: need %v in one of %v; run the demo from the weft source tree or pass --recipes DIR", ErrNoRecipes, demoRecipes, tried)
}

func hasRecipes(dir string) error {
	for _, f := range demoRecipes {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			return fmt.Errorf("%w: %w", ErrNoRecipes, err)
		}
	}
	return nil
}
