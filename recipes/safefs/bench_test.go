//go:build unix

package safefs

import (
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

// sfBenchTree makes 20 directories of 50 files of 4 KiB (a batch result
// of middling size).
func sfBenchTree(b *testing.B) string {
	b.Helper()
	root := b.TempDir()
	data := make([]byte, 4096)
	for i := 0; i < 20; i++ {
		d := filepath.Join(root, "d"+strconv.Itoa(i))
		if err := os.Mkdir(d, 0o755); err != nil {
			b.Fatal(err)
		}
		for j := 0; j < 50; j++ {
			if err := os.WriteFile(filepath.Join(d, "f"+strconv.Itoa(j)), data, 0o644); err != nil {
				b.Fatal(err)
			}
		}
	}
	return root
}

// BenchmarkReadTree reads every file of a tree the way a result is
// stored: with Walk and Entry.Open (descriptors, no symlink followed), and
// as a baseline with filepath.WalkDir and os.Open by path.
func BenchmarkReadTree(b *testing.B) {
	root := sfBenchTree(b)
	buf := make([]byte, 64<<10)
	b.Run("safefs", func(b *testing.B) {
		for b.Loop() {
			err := Walk(root, func(e *Entry) error {
				if !e.IsRegular() {
					return nil
				}
				f, err := e.Open()
				if err != nil {
					return err
				}
				_, err = io.CopyBuffer(io.Discard, f, buf)
				f.Close()
				return err
			})
			if err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("walkdir", func(b *testing.B) {
		for b.Loop() {
			err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
				if err != nil || !d.Type().IsRegular() {
					return err
				}
				f, err := os.Open(p)
				if err != nil {
					return err
				}
				_, err = io.CopyBuffer(io.Discard, f, buf)
				f.Close()
				return err
			})
			if err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkDiskUsage measures a tree with DiskUsage and, as a baseline,
// with filepath.WalkDir and Info (lstat by path).
func BenchmarkDiskUsage(b *testing.B) {
	root := sfBenchTree(b)
	b.Run("safefs", func(b *testing.B) {
		for b.Loop() {
			if DiskUsage(root) <= 0 {
				b.Fatal("no usage")
			}
		}
	})
	b.Run("walkdir", func(b *testing.B) {
		for b.Loop() {
			var n int64
			_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
				if err != nil {
					return nil
				}
				if fi, err := d.Info(); err == nil {
					n += fi.Size()
				}
				return nil
			})
			if n <= 0 {
				b.Fatal("no usage")
			}
		}
	})
}
