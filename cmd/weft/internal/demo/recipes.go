package demo

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/weftgrid/weft/recipes/examples"
)

// ErrNoRecipes means the example recipes could not be found.
var ErrNoRecipes = errors.New("demo: example recipes not found")

// demoRecipes are the example recipes the demo publishes, by file name.
var demoRecipes = []string{"webserver.toml", "primes.toml"}

// findRecipesDir returns the folder holding every file of demoRecipes: the
// configured one (an error when they are not there), else recipes/examples
// in the working directory or one of its parents, else next to the binary
// (bin/weft → ../recipes/examples), else scratch/recipes holding the copies
// embedded in the binary (written there; scratch is the demo's temporary
// folder, removed with it). The second result says where they came from.
func findRecipesDir(configured, bin, scratch string) (string, string, error) {
	if configured != "" {
		if err := hasRecipes(configured); err != nil {
			return "", "", err
		}
		return configured, "--recipes", nil
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
				return filepath.Join(dir, "recipes", "examples"), "source tree", nil
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
				return filepath.Join(dir, "recipes", "examples"), "next to the binary", nil
			}
		}
	}
	if scratch != "" {
		dir := filepath.Join(scratch, "recipes")
		if err := writeEmbeddedRecipes(dir); err != nil {
			return "", "", fmt.Errorf("%w: writing the embedded copies: %w", ErrNoRecipes, err)
		}
		return dir, "embedded in the binary", nil
	}
	return "", "", fmt.Errorf("%w: need %v in one of %v; run the demo from the weft source tree or pass --recipes DIR", ErrNoRecipes, demoRecipes, tried)
}

// writeEmbeddedRecipes writes the demo's recipes embedded in the binary
// (package recipes/examples) into dir.
func writeEmbeddedRecipes(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	for _, f := range demoRecipes {
		b, err := fs.ReadFile(examples.FS, f)
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o600); err != nil {
			return err
		}
	}
	return nil
}

func hasRecipes(dir string) error {
	for _, f := range demoRecipes {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			return fmt.Errorf("%w: %w", ErrNoRecipes, err)
		}
	}
	return nil
}
