package config

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

// checkpoint_slices (0..1000000) and slice (100ms..24h) are each valid, but
// their product, CheckpointInterval, must not wrap around int64
// nanoseconds: a negative interval silently disables checkpoints, and a
// wrapped small positive one appends a checkpoint every few microseconds.
func TestCheckpointIntervalDoesNotOverflow(t *testing.T) {
	for _, tc := range []struct {
		slice  string
		slices int
	}{
		{"24h", 1_000_000},
		{"24h", 200_000},
		// 2^46+1 ns (about 19.5h) × 2^18 slices wraps to 2^18 ns.
		{"70368744177665ns", 262_144},
	} {
		dir := t.TempDir()
		file := filepath.Join(dir, "weft.toml")
		toml := "[ledger]\nslice = \"" + tc.slice + "\"\ncheckpoint_slices = " + strconv.Itoa(tc.slices) + "\n"
		if err := os.WriteFile(file, []byte(toml), 0o600); err != nil {
			t.Fatal(err)
		}
		c, err := Load(file)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Validate(); err != nil {
			continue // refusing the combination is fine too
		}
		got := c.Ledger.CheckpointInterval()
		if got < c.Ledger.SliceDuration() {
			t.Errorf("slice %s × %d slices: CheckpointInterval() = %v, shorter than one slice (wrapped around)", tc.slice, tc.slices, got)
		}
	}
}
