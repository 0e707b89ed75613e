//go:build unix

package safefs

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// sfTree makes root/tree (a/b/file, a/link → ../a, top) and root/outside
// (secret), and returns the tree and outside directories.
func sfTree(t *testing.T) (tree, outside string) {
	t.Helper()
	root := t.TempDir()
	tree, outside = filepath.Join(root, "tree"), filepath.Join(root, "outside")
	for _, d := range []string{filepath.Join(tree, "a", "b"), outside} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	write := func(p, s string) {
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(tree, "a", "b", "file"), "inside")
	write(filepath.Join(tree, "top"), "inside")
	write(filepath.Join(outside, "secret"), "SECRET")
	if err := os.Symlink("../a", filepath.Join(tree, "a", "link")); err != nil {
		t.Fatal(err)
	}
	return tree, outside
}

func TestWalkListsWithoutFollowing(t *testing.T) {
	tree, _ := sfTree(t)
	var got []string
	err := Walk(tree, func(e *Entry) error {
		s := e.Path
		switch {
		case e.IsDir():
			s += "/"
		case e.IsSymlink():
			l, err := e.Readlink()
			if err != nil {
				return err
			}
			s += "->" + l
		case e.IsRegular():
			f, err := e.Open()
			if err != nil {
				return err
			}
			b, _ := io.ReadAll(f)
			f.Close()
			s += "=" + string(b)
		}
		got = append(got, s)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(got)
	want := []string{"a/", "a/b/", "a/b/file=inside", "a/link->../a", "top=inside"}
	if !slices.Equal(got, want) {
		t.Fatalf("walk saw %q, want %q", got, want)
	}
}

func TestWalkRefusesASymlinkedRoot(t *testing.T) {
	tree, outside := sfTree(t)
	link := filepath.Join(filepath.Dir(tree), "rootlink")
	if err := os.Symlink(outside, link); err != nil {
		t.Fatal(err)
	}
	err := Walk(link, func(*Entry) error { return nil })
	if !errors.Is(err, ErrSymlink) {
		t.Fatalf("walk of a symlinked root: %v, want ErrSymlink", err)
	}
}

func TestOpenDoesNotBlockOnAFIFO(t *testing.T) {
	tree, _ := sfTree(t)
	if err := unix.Mkfifo(filepath.Join(tree, "fifo"), 0o644); err != nil {
		t.Skip("mkfifo:", err)
	}
	saw := false
	err := Walk(tree, func(e *Entry) error {
		if e.Name == "fifo" {
			saw = true
			if _, err := e.Open(); !errors.Is(err, ErrNotRegular) {
				t.Errorf("open of a FIFO: %v, want ErrNotRegular", err)
			}
			if _, err := e.Parent.OpenFile("fifo"); !errors.Is(err, ErrNotRegular) {
				t.Errorf("OpenFile of a FIFO: %v, want ErrNotRegular", err)
			}
		}
		return nil
	})
	if err != nil || !saw {
		t.Fatalf("walk: %v (fifo seen: %v)", err, saw)
	}
}

func TestOpenBeneathRefusesLinksAndEscapes(t *testing.T) {
	tree, _ := sfTree(t)
	d, err := OpenDir(tree)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	sub, err := d.OpenBeneath("a/b")
	if err != nil {
		t.Fatal(err)
	}
	sub.Close()
	for _, rel := range []string{"a/link", "a/link/b", "../outside", "a/../../outside", "/etc"} {
		if s, err := d.OpenBeneath(rel); err == nil {
			s.Close()
			t.Errorf("OpenBeneath(%q) succeeded", rel)
		}
	}
}

// sfSwapper swaps dir with a symbolic link to target, atomically
// (renameat2 RENAME_EXCHANGE) and over and over, until it is stopped or,
// when mayVanish, either is removed.
type sfSwapper struct {
	t         *testing.T
	dir, link string
	mayVanish bool
	done      atomic.Bool
	swaps     atomic.Int64
	wg        sync.WaitGroup
}

func newSFSwapper(t *testing.T, dir, target string, mayVanish bool) *sfSwapper {
	t.Helper()
	sw := &sfSwapper{t: t, dir: dir, link: dir + ".swap", mayVanish: mayVanish}
	if err := os.Symlink(target, sw.link); err != nil {
		t.Fatal(err)
	}
	sw.wg.Add(1)
	go func() {
		defer sw.wg.Done()
		for !sw.done.Load() {
			if err := unix.Renameat2(unix.AT_FDCWD, dir, unix.AT_FDCWD, sw.link, unix.RENAME_EXCHANGE); err != nil {
				if !mayVanish || !errors.Is(err, unix.ENOENT) {
					t.Errorf("swap: %v", err)
				}
				return
			}
			sw.swaps.Add(1)
		}
	}()
	return sw
}

// racing reports whether the race should go on after round i: at least
// sfRounds rounds, and until the swapper has swapped sfMinSwaps times
// (on a loaded machine it may not run at first), for at most a minute.
func (sw *sfSwapper) racing(i int, start time.Time) bool {
	if time.Since(start) > time.Minute {
		return false
	}
	return i < sfRounds || sw.swaps.Load() < sfMinSwaps
}

// stop ends the swaps, leaves dir a directory again and fails the test if
// the swapper never swapped (the race did not happen).
func (sw *sfSwapper) stop() {
	sw.done.Store(true)
	sw.wg.Wait()
	if fi, err := os.Lstat(sw.dir); err == nil && fi.Mode()&os.ModeSymlink != 0 {
		_ = unix.Renameat2(unix.AT_FDCWD, sw.dir, unix.AT_FDCWD, sw.link, unix.RENAME_EXCHANGE)
	}
	if !sw.mayVanish && sw.swaps.Load() == 0 {
		sw.t.Error("the swapper never swapped in a minute: nothing was raced")
	}
}

// Sizes of each race.
const (
	sfRounds   = 400
	sfMinSwaps = 200
)

func TestWalkNeverLeavesTheTreeUnderASwapper(t *testing.T) {
	tree, outside := sfTree(t)
	sw := newSFSwapper(t, filepath.Join(tree, "a"), outside, false)
	defer sw.stop()
	for i, start := 0, time.Now(); sw.racing(i, start); i++ {
		_ = Walk(tree, func(e *Entry) error {
			if strings.Contains(e.Path, "secret") {
				t.Fatalf("the walk reached %s", e.Path)
			}
			if e.IsRegular() {
				f, err := e.Open()
				if err != nil {
					return nil // replaced meanwhile: refused
				}
				b, _ := io.ReadAll(f)
				f.Close()
				if string(b) == "SECRET" {
					t.Fatalf("read the outside file as %s", e.Path)
				}
			}
			return nil
		})
	}
}

func TestOpenBeneathNeverLeavesTheTreeUnderASwapper(t *testing.T) {
	tree, outside := sfTree(t)
	if err := os.Mkdir(filepath.Join(outside, "b"), 0o755); err != nil {
		t.Fatal(err)
	}
	sw := newSFSwapper(t, filepath.Join(tree, "a"), outside, false)
	defer sw.stop()
	d, err := OpenDir(tree)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	for i, start := 0, time.Now(); sw.racing(i, start); i++ {
		sub, err := d.OpenBeneath("a/b")
		if err != nil {
			continue
		}
		if _, err := sub.Lstat("file"); err != nil {
			t.Fatalf("OpenBeneath(a/b) opened a directory without the tree's file: %v", err)
		}
		sub.Close()
	}
}

func TestChownTreeNeverChangesAnOutsideFile(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("changing owners needs root")
	}
	tree, outside := sfTree(t)
	secret := filepath.Join(outside, "secret")
	sw := newSFSwapper(t, filepath.Join(tree, "a"), outside, false)
	const uid, gid = 54321, 54321
	for i, start := 0, time.Now(); sw.racing(i, start); i++ {
		_ = ChownTree(tree, Owner{UID: uid, GID: gid, LinkedFrom: -1})
	}
	sw.stop()
	var st unix.Stat_t
	for _, p := range []string{secret, outside} {
		if err := unix.Lstat(p, &st); err != nil {
			t.Fatal(err)
		}
		if st.Uid != 0 || st.Gid != 0 {
			t.Fatalf("%s now belongs to %d:%d", p, st.Uid, st.Gid)
		}
	}
	// Once the swaps stop, the whole tree is changed.
	if err := ChownTree(tree, Owner{UID: uid, GID: gid, LinkedFrom: -1}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Lstat(filepath.Join(tree, "a", "b", "file"), &st); err != nil || st.Uid != uid {
		t.Fatalf("a file of the tree: uid %d (%v), want %d", st.Uid, err, uid)
	}
}

func TestChownTreeLeavesHardLinksAndClearsModes(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("changing owners needs root")
	}
	tree, outside := sfTree(t)
	secret := filepath.Join(outside, "secret")
	if err := os.Link(secret, filepath.Join(tree, "hard")); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(tree, "top"), 0o4777); err != nil {
		t.Fatal(err)
	}
	if err := ChownTree(tree, Owner{UID: 54321, GID: 54321, LinkedFrom: -1, ClearMode: 0o6022}); err != nil {
		t.Fatal(err)
	}
	var st unix.Stat_t
	if err := unix.Lstat(secret, &st); err != nil || st.Uid != 0 {
		t.Fatalf("a hard link planted in the tree gave away %s: uid %d (%v)", secret, st.Uid, err)
	}
	if err := unix.Lstat(filepath.Join(tree, "top"), &st); err != nil || st.Uid != 54321 || st.Mode&0o7777 != 0o755 {
		t.Fatalf("top: uid %d mode %o (%v), want 54321 0755", st.Uid, st.Mode&0o7777, err)
	}
	if err := unix.Lstat(filepath.Join(tree, "a", "link"), &st); err != nil || st.Uid != 54321 {
		t.Fatalf("a symbolic link of the tree: uid %d (%v)", st.Uid, err)
	}
	// Taking it back: the multiply-linked file is changed only from its user.
	if err := os.Chown(secret, 54321, 54321); err != nil {
		t.Fatal(err)
	}
	if err := ChownTree(tree, Owner{UID: 0, GID: 0, LinkedFrom: 54321}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Lstat(secret, &st); err != nil || st.Uid != 0 {
		t.Fatalf("linked file owned by the tree's user: uid %d (%v), want it taken back", st.Uid, err)
	}
}

func TestRemoveAllNeverLeavesTheTreeUnderASwapper(t *testing.T) {
	for range 50 {
		tree, outside := sfTree(t)
		sw := newSFSwapper(t, filepath.Join(tree, "a"), outside, true)
		err := RemoveAll(tree)
		sw.stop()
		if _, serr := os.Stat(filepath.Join(outside, "secret")); serr != nil {
			t.Fatalf("RemoveAll (%v) removed an outside file: %v", err, serr)
		}
		if err := RemoveAll(tree); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Lstat(tree); !os.IsNotExist(err) {
			t.Fatalf("tree still there: %v", err)
		}
	}
}

func TestRemoveAllOfALinkRemovesTheLink(t *testing.T) {
	tree, outside := sfTree(t)
	link := filepath.Join(tree, "out")
	if err := os.Symlink(outside, link); err != nil {
		t.Fatal(err)
	}
	if err := RemoveAll(link); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(link); !os.IsNotExist(err) {
		t.Fatalf("link still there: %v", err)
	}
	if _, err := os.Stat(filepath.Join(outside, "secret")); err != nil {
		t.Fatal(err)
	}
	if err := RemoveAll(filepath.Join(tree, "missing")); err != nil {
		t.Fatalf("a missing path: %v", err)
	}
}

func TestDiskUsageCountsOnlyTheTree(t *testing.T) {
	tree, outside := sfTree(t)
	big := make([]byte, 1<<20)
	for i := range big {
		big[i] = byte(i)
	}
	if err := os.WriteFile(filepath.Join(outside, "big"), big, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(tree, "escape")); err != nil {
		t.Fatal(err)
	}
	if n := DiskUsage(tree); n <= 0 || n >= 1<<20 {
		t.Fatalf("disk usage %d: want the tree's few blocks only", n)
	}
	if err := os.WriteFile(filepath.Join(tree, "big"), big, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(filepath.Join(tree, "big"), filepath.Join(tree, "big2")); err != nil {
		t.Fatal(err)
	}
	if n := DiskUsage(tree); n < 1<<20 || n >= 2<<20 {
		t.Fatalf("disk usage %d: want the 1 MiB file once", n)
	}
}

func TestWalkDepthIsBounded(t *testing.T) {
	tree, _ := sfTree(t)
	d, err := OpenDir(tree)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	cur := d
	for i := 0; i < MaxDepth+2; i++ {
		if err := unix.Mkdirat(cur.Fd(), "d", 0o755); err != nil {
			t.Fatal(err)
		}
		next, err := cur.OpenDir("d")
		if err != nil {
			t.Fatal(err)
		}
		if cur != d {
			cur.Close()
		}
		cur = next
	}
	cur.Close()
	if err := Walk(tree, func(*Entry) error { return nil }); !errors.Is(err, ErrTooDeep) {
		t.Fatalf("walk of a too deep tree: %v", err)
	}
	if err := RemoveAll(tree); err != nil {
		t.Fatalf("remove of a too deep tree: %v", err)
	}
	if _, err := os.Lstat(tree); !os.IsNotExist(err) {
		t.Fatalf("too deep tree still there: %v", err)
	}
}
