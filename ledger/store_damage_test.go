package ledger

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

const corruptEnv = "WEFT_LEDGER_CORRUPT_CHILD"

// TestCorruptChild is the child process of TestDamagedFileIsAnErrorNotACrash:
// it opens the damaged file named in the environment (read-write, then
// read-only) and prints what Open returned. bbolt's panics on a damaged page
// would kill it instead.
func TestCorruptChild(t *testing.T) {
	path := os.Getenv(corruptEnv)
	if path == "" {
		t.Skip("child process of TestDamagedFileIsAnErrorNotACrash")
	}
	for _, ro := range []bool{false, true} {
		l, err := Open(Config{Path: path, ReadOnly: ro, Signer: deterministicSigner(t, 7)})
		if err == nil {
			l.Close()
			t.Fatalf("read-only %v: opened a damaged file", ro)
		}
		if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrCIDMismatch) {
			t.Logf("read-only %v: error %v does not say the file is damaged", ro, err)
		}
		t.Logf("OPEN-ERROR read-only=%v: %v", ro, err)
	}
}

// TestDamagedFileIsAnErrorNotACrash damages a ledger file in ways a bad disk
// or a stray write could, and requires Open to report it: before, bbolt's
// assertions panicked inside a goroutine of its own while rebuilding the
// free list, which no caller can recover, so the node crashed on start.
func TestDamagedFileIsAnErrorNotACrash(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes")
	}
	damage := map[string]func([]byte) []byte{
		"page flags": func(b []byte) []byte {
			for p := 2; p*4096+9 < len(b); p++ {
				b[p*4096+8], b[p*4096+9] = 0xff, 0xff
			}
			return b
		},
		"zeroed pages": func(b []byte) []byte {
			clear(b[2*4096:])
			return b
		},
		"truncated": func(b []byte) []byte { return b[:len(b)/2] },
	}
	for name, f := range damage {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "ledger.db")
			me := deterministicSigner(t, 7)
			l, err := Open(Config{Path: path, Signer: me})
			if err != nil {
				t.Fatal(err)
			}
			for i := range 300 {
				if _, err := l.Append(context.Background(), Grant{To: me.ID(), Amount: uint64(i)}); err != nil {
					t.Fatal(err)
				}
			}
			l.Close()
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, f(b), 0o600); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(os.Args[0], "-test.run=^TestCorruptChild$", "-test.count=1", "-test.v")
			cmd.Env = append(os.Environ(), corruptEnv+"="+path)
			out, err := cmd.CombinedOutput()
			if err != nil || strings.Count(string(out), "OPEN-ERROR") != 2 {
				t.Fatalf("opening a damaged file (%s) did not return an error: %v\n%.3000s", name, err, out)
			}
		})
	}
}
