package store

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

// A link whose target is lexically inside the tree but goes through another
// link of the tree ("y" -> "x/up/.." with "x/up" -> "..") resolves outside
// it; a file written under it lands outside outDir.
func TestGetDirRefusesEscapeThroughLinks(t *testing.T) {
	s := newStore(t)
	chunk, _ := s.PutRaw([]byte("x"))
	for name, entries := range map[string][]entry{
		"link through link": {
			{Path: "x", Mode: 0o755, Dir: true},
			{Path: "x/up", Link: ".."},
			{Path: "y", Link: "x/up/.."},
			{Path: "y/pwned", Mode: 0o644, Size: 1, Chunks: [][]byte{chunk.Bytes()}},
		},
		"link resolving outside": {
			{Path: "x", Mode: 0o755, Dir: true},
			{Path: "x/up", Link: ".."},
			{Path: "y", Link: "x/up/.."},
		},
	} {
		t.Run(name, func(t *testing.T) {
			c, err := s.putManifest(&manifest{Kind: kindDir, Entries: entries})
			if err != nil {
				t.Fatal(err)
			}
			base := t.TempDir()
			err = s.GetDir(context.Background(), c, filepath.Join(base, "out"))
			if _, serr := os.Stat(filepath.Join(base, "pwned")); serr == nil {
				t.Fatalf("GetDir wrote %s outside its output directory (err %v)", filepath.Join(base, "pwned"), err)
			}
			if err == nil {
				t.Fatal("a link resolving outside the tree was accepted")
			}
		})
	}
}
