package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The restart budget is read from [partitions] restart_budget, defaults to
// 10 when the key is absent (an older config file), and is bounded.
func TestRestartBudgetKey(t *testing.T) {
	dir := t.TempDir()
	load := func(body string) (Config, error) {
		p := filepath.Join(dir, "weft.toml")
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		c, err := Load(p)
		if err == nil {
			err = c.Validate()
		}
		return c, err
	}
	c, err := load("[partitions]\nrestart_budget = 2\n")
	if err != nil || c.Partitions.RestartBudget != 2 {
		t.Fatalf("restart_budget = 2: %v, %d", err, c.Partitions.RestartBudget)
	}
	c, err = load("[partitions]\ncount = 2\n")
	if err != nil || c.Partitions.RestartBudget != 10 {
		t.Fatalf("no restart_budget: %v, %d, want the default 10", err, c.Partitions.RestartBudget)
	}
	for _, v := range []string{"0", "-1", "1001"} {
		if _, err := load("[partitions]\nrestart_budget = " + v + "\n"); err == nil || !strings.Contains(err.Error(), "restart_budget") {
			t.Errorf("restart_budget = %s: %v, want an error naming the key", v, err)
		}
	}
}
