package partition

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRotateLog(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "x.log")
	// A writer keeps appending through the same descriptor, as a process does.
	f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for gen := 1; gen <= 4; gen++ {
		f.WriteString(strings.Repeat(string(rune('a'+gen)), 100))
		rotateLog(p, 50, 3)
	}
	f.WriteString("tail")
	if got := readFileString(t, p); got != "tail" {
		t.Errorf("current log %q", got)
	}
	for i, want := range map[int]string{1: "e", 2: "d", 3: "c"} {
		got := readFileString(t, p+"."+string(rune('0'+i)))
		if got != strings.Repeat(want, 100) {
			t.Errorf("%s.%d = %.10q…", p, i, got)
		}
	}
	if _, err := os.Stat(p + ".4"); !os.IsNotExist(err) {
		t.Errorf("more than 3 rotated logs kept")
	}
	rotateLog(p, 50, 3) // under the limit: nothing happens
	if got := readFileString(t, p); got != "tail" {
		t.Errorf("rotated under the limit: %q", got)
	}
}

func TestDuBytes(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "a"), make([]byte, 100_000), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(filepath.Join(dir, "a"), filepath.Join(dir, "b")); err != nil {
		t.Fatal(err)
	}
	n := duBytes(dir)
	if n < 100_000 || n > 200_000 {
		t.Errorf("du = %d for one 100 kB file linked twice", n)
	}
}
