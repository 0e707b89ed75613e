//go:build linux

package store

import (
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	"golang.org/x/sys/unix"
)

// TestPutDirNeverStoresAnOutsideFile races PutDir against a swapper that
// exchanges a subdirectory of the tree with a symbolic link to a
// directory holding a secret, as a tenant's leftover process would: no
// stored tree may ever hold the secret.
func TestPutDirNeverStoresAnOutsideFile(t *testing.T) {
	s := newStore(t)
	root := t.TempDir()
	out, secret := filepath.Join(root, "out"), filepath.Join(root, "datadir")
	for _, d := range []string{filepath.Join(out, "sub"), secret} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(out, "sub", "result"), []byte("result"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(secret, "identity.key"), []byte("SECRET KEY"), 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(out, "sub.swap")
	if err := os.Symlink(secret, link); err != nil {
		t.Fatal(err)
	}
	var done atomic.Bool
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for !done.Load() {
			_ = unix.Renameat2(unix.AT_FDCWD, filepath.Join(out, "sub"), unix.AT_FDCWD, link, unix.RENAME_EXCHANGE)
		}
	}()
	defer func() { done.Store(true); wg.Wait() }()
	stored := 0
	for range 300 {
		c, err := s.PutDir(out)
		if err != nil {
			continue // a file replaced under the walk: refused
		}
		stored++
		ents, err := s.ListDir(c)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range ents {
			if filepath.Base(e.Path) == "identity.key" {
				t.Fatalf("stored tree holds %s", e.Path)
			}
		}
	}
	if stored == 0 {
		t.Fatal("no walk completed")
	}
}
