package partition

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
)

// Where partitions and installed software live.
//
// Partition users (PREFIXN) and the install user must traverse every
// directory above their partition, the software root and the weft binary.
// A node started with `sudo weft node` and the default data dir ~/.weft
// has it under /root, mode 0700, which no other user may enter; chmod-ing
// a user's home is not the node's business. Like SlapOS, which keeps
// instances in /srv/slapgrid and software in /opt/slapgrid whatever its
// configuration directory, the node then keeps partitions and software
// under a root it owns, Config.RunDir (/var/lib/weft) — in
// RunDir/nodes/<hash of the data dir>/ so that several nodes on one
// machine never share it — and copies its own executable into bin/ there
// when partition users cannot reach it either. The desired state
// (partitions/state.cbor) stays in the data dir.

// layout is the resolved set of directories of a Manager.
type layout struct {
	base      string // holds partitions/, software/, bin/
	parts     string // base/partitions
	soft      string // base/software
	state     string // DataDir/partitions/state.cbor
	relocated bool   // base is below RunDir, not the data dir
}

// errNotTraversable means partition users cannot reach a path.
var errNotTraversable = errors.New("partition: not reachable by partition users")

// othersCanReach reports whether a user that is neither the owner nor in
// the group of each directory above path (path excluded) may traverse
// them (mode o+x), and when not, the first directory that stops them.
// Symbolic links are followed: both the given and the resolved path must
// be reachable. ACLs are not consulted.
func othersCanReach(path string) (bool, string) {
	paths := []string{path}
	if real := resolveExisting(path); real != path {
		paths = append(paths, real)
	}
	for _, p := range paths {
		for d := filepath.Dir(p); ; d = filepath.Dir(d) {
			fi, err := os.Stat(d)
			if err != nil || fi.Mode().Perm()&0o001 == 0 {
				return false, d
			}
			if d == filepath.Dir(d) {
				break
			}
		}
	}
	return true, ""
}

// resolveExisting resolves the symbolic links of the longest existing
// prefix of path and appends the rest.
func resolveExisting(path string) string {
	rest := ""
	for p := path; ; p = filepath.Dir(p) {
		if real, err := filepath.EvalSymlinks(p); err == nil {
			return filepath.Join(real, rest)
		}
		if p == filepath.Dir(p) {
			return path
		}
		rest = filepath.Join(filepath.Base(p), rest)
	}
}

// resolveLayout chooses where partitions and software live for the data
// dir abs: in the data dir, or below runDir when isolated partition users
// could not reach the data dir.
func resolveLayout(abs, runDir string, isolated bool) (layout, error) {
	l := layout{base: abs, state: filepath.Join(abs, "partitions", "state.cbor")}
	if isolated {
		if ok, _ := othersCanReach(abs); !ok {
			if runDir == "" {
				runDir = DefaultRunDir
			}
			rd, err := filepath.Abs(runDir)
			if err != nil {
				return layout{}, err
			}
			sum := sha256.Sum256([]byte(abs))
			l.base = filepath.Join(rd, "nodes", hex.EncodeToString(sum[:8]))
			l.relocated = true
		}
	}
	l.parts = filepath.Join(l.base, "partitions")
	l.soft = filepath.Join(l.base, "software")
	return l, nil
}

// create makes the layout's directories with the modes isolated partition
// users need: base and partitions 0711 (enter, not list), software 0755.
// The data dir keeps its own mode when the layout is relocated (only the
// state directory is made in it, 0700).
func (l layout) create(abs string, isolated bool) error {
	mk := func(d string, mode os.FileMode) error {
		if err := os.MkdirAll(d, mode); err != nil {
			return fmt.Errorf("partition: %w", err)
		}
		if isolated {
			if err := os.Chmod(d, mode); err != nil {
				return fmt.Errorf("partition: %w", err)
			}
		}
		return nil
	}
	if l.relocated {
		// RunDir and nodes/ are shared by the nodes of the machine.
		for _, d := range []string{filepath.Dir(filepath.Dir(l.base)), filepath.Dir(l.base)} {
			if err := mk(d, 0o711); err != nil {
				return err
			}
		}
		if ok, at := othersCanReach(l.base); !ok {
			return fmt.Errorf("%w: %s (run dir %s): partition users cannot enter %s; choose a run_dir whose parents are world-traversable",
				errNotTraversable, l.base, filepath.Dir(filepath.Dir(l.base)), at)
		}
		if err := mk(filepath.Dir(l.state), 0o700); err != nil {
			return err
		}
		if err := mk(l.base, 0o711); err != nil {
			return err
		}
		// Who this directory belongs to, for the administrator.
		if err := os.WriteFile(filepath.Join(l.base, "DATA_DIR"), []byte(abs+"\n"), 0o644); err != nil {
			return fmt.Errorf("partition: %w", err)
		}
	} else if isolated {
		if err := mk(abs, 0o711); err != nil {
			return err
		}
	}
	if err := mk(l.parts, 0o711); err != nil {
		return err
	}
	return mk(l.soft, 0o755)
}

// reachableExecutable returns a path of the executable exe that isolated
// partition users can run: exe itself when they can reach and execute it,
// otherwise a copy in dir (created 0755), refreshed when exe changed (size
// or modification time).
func reachableExecutable(exe, dir string) (string, error) {
	fi, err := os.Stat(exe)
	if err != nil {
		return "", fmt.Errorf("partition: executable: %w", err)
	}
	if ok, _ := othersCanReach(exe); ok && fi.Mode().Perm()&0o001 != 0 {
		return exe, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("partition: %w", err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		return "", fmt.Errorf("partition: %w", err)
	}
	dest := filepath.Join(dir, filepath.Base(exe))
	if di, err := os.Lstat(dest); err == nil && di.Mode().IsRegular() && di.Size() == fi.Size() &&
		di.ModTime().Equal(fi.ModTime()) && di.Mode().Perm() == 0o755 {
		return dest, nil
	}
	src, err := os.Open(exe)
	if err != nil {
		return "", fmt.Errorf("partition: executable: %w", err)
	}
	defer src.Close()
	tmp := dest + ".tmp"
	_ = os.Remove(tmp)
	w, err := os.OpenFile(tmp, os.O_CREATE|os.O_EXCL|os.O_WRONLY|syscall.O_NOFOLLOW, 0o755)
	if err != nil {
		return "", fmt.Errorf("partition: executable copy: %w", err)
	}
	_, err = io.Copy(w, src)
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp, 0o755) // umask
	}
	if err == nil {
		err = os.Chtimes(tmp, fi.ModTime(), fi.ModTime())
	}
	if err == nil {
		err = os.Rename(tmp, dest)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return "", fmt.Errorf("partition: executable copy: %w", err)
	}
	return dest, nil
}
