package partition

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/weftgrid/weft/recipes"
	"github.com/weftgrid/weft/recipes/safefs"
)

// installedSuffix names the marker of a completed install: software/CID +
// installedSuffix, next to the software directory and not in it, where
// neither the recipe's files nor its install commands (run as the install
// user, who owns the directory meanwhile) can put it.
const installedSuffix = ".installed"

// legacyMarker is where versions before installedSuffix marked a completed
// install: inside the software directory. migratedMarkers, in the software
// root, records that the legacy markers found there were carried over, once:
// a legacy marker left later (by a failed install of this version, where a
// recipe file or an install command may write it) is never trusted.
const (
	legacyMarker    = ".weft-installed"
	migratedMarkers = ".weft-markers-migrated"
)

// migrateLegacyMarkers gives every install the previous version completed
// in soft (software/CID/.weft-installed) the marker this version looks for
// (software/CID.installed), so that an upgraded node neither wipes nor
// installs again software its instances run from. It runs once per root.
func migrateLegacyMarkers(soft string) error {
	done := filepath.Join(soft, migratedMarkers)
	if _, err := os.Lstat(done); err == nil {
		return nil
	}
	ents, err := os.ReadDir(soft)
	if err != nil {
		return err
	}
	for _, e := range ents {
		if !e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		dir := filepath.Join(soft, e.Name())
		if fi, err := os.Lstat(filepath.Join(dir, legacyMarker)); err != nil || !fi.Mode().IsRegular() {
			continue
		}
		mf, err := os.OpenFile(dir+installedSuffix, os.O_CREATE|os.O_EXCL|os.O_WRONLY|syscall.O_NOFOLLOW, 0o644)
		if err != nil {
			if os.IsExist(err) {
				continue
			}
			return err
		}
		_, err = mf.WriteString(time.Now().UTC().Format(time.RFC3339) + " (carried over from " + legacyMarker + ")\n")
		if cerr := mf.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
	}
	return os.WriteFile(done, nil, 0o644)
}

// SoftwareDir returns where the recipe with CID c is installed.
func (m *Manager) SoftwareDir(c string) string { return filepath.Join(m.softDir, c) }

// install makes sure the recipe is installed in DataDir/software/CID: its
// files written and its install commands run, once per node per CID
// (SlapOS's software_root). Concurrent calls for one CID wait for one install.
func (m *Manager) install(ctx context.Context, c string, rc *recipes.Recipe) (string, error) {
	dir := m.SoftwareDir(c)
	m.installMu.Lock()
	l, ok := m.installLock[c]
	if !ok {
		l = &sync.Mutex{}
		m.installLock[c] = l
	}
	m.installMu.Unlock()
	l.Lock()
	defer l.Unlock()
	marker := dir + installedSuffix
	if fi, err := os.Lstat(marker); err == nil && fi.Mode().IsRegular() {
		return dir, nil
	}
	_ = os.Remove(marker)
	_ = safefs.RemoveAll(dir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("%w: %v", ErrInstall, err)
	}
	if err := m.writeFiles(ctx, dir, rc.Files, account{}); err != nil {
		return "", fmt.Errorf("%w: %v", ErrInstall, err)
	}
	cmds, env, err := rc.Install.RenderInstall(recipes.TemplateContext{
		Weft: m.weft, Node: recipes.NodeInfo{PeerID: m.cfg.PeerID}, Host: m.cfg.Host,
		Partition: recipes.PartitionInfo{ID: -1, Software: dir}, Params: map[string]any{},
	})
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrInstall, err)
	}
	if len(cmds) > 0 {
		if err := chownTree(dir, m.installAs, -1); err != nil {
			return "", fmt.Errorf("%w: %v", ErrInstall, err)
		}
		timeout := rc.Install.Timeout.D()
		if timeout <= 0 {
			timeout = 10 * time.Minute
		}
		ictx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		logPath := dir + ".install.log"
		logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
		if err != nil {
			return "", fmt.Errorf("%w: %v", ErrInstall, err)
		}
		defer logf.Close()
		envList := []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
			"HOME=" + dir, "TMPDIR=" + dir, "LANG=C.UTF-8", "WEFT_SOFTWARE=" + dir}
		envList = append(envList, sortedEnv(env)...)
		for i, c := range cmds {
			fmt.Fprintf(logf, "--- weft: install step %d: %s\n", i+1, c)
			cmd := exec.CommandContext(ictx, "/bin/sh", "-c", c)
			cmd.Dir, cmd.Env, cmd.Stdout, cmd.Stderr = dir, envList, logf, logf
			cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
			if m.installAs.set() {
				cmd.SysProcAttr.Credential = &syscall.Credential{Uid: uint32(m.installAs.UID), Gid: uint32(m.installAs.GID), Groups: []uint32{}}
			}
			cmd.Cancel = func() error { killGroup(cmd.Process.Pid, syscall.SIGKILL); return nil }
			cmd.WaitDelay = 2 * time.Second
			if err := cmd.Run(); err != nil {
				if ictx.Err() != nil {
					err = fmt.Errorf("timed out after %s", timeout)
				}
				tail := tailFile(logPath, 400)
				return "", fmt.Errorf("%w: step %d (%s): %v; log %s: %s", ErrInstall, i+1, c, err, logPath, tail)
			}
		}
		// Shared software is read-only to instances: give it back to root,
		// writable by nobody else, with no setuid or setgid bit.
		if m.installAs.set() {
			if err := safefs.ChownTree(dir, safefs.Owner{UID: 0, GID: 0, LinkedFrom: m.installAs.UID, ClearMode: 0o6022}); err != nil {
				return "", fmt.Errorf("%w: %v", ErrInstall, err)
			}
		}
	}
	mf, err := os.OpenFile(marker, os.O_CREATE|os.O_EXCL|os.O_WRONLY|syscall.O_NOFOLLOW, 0o644)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrInstall, err)
	}
	_, err = mf.WriteString(time.Now().UTC().Format(time.RFC3339) + "\n")
	if cerr := mf.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrInstall, err)
	}
	return dir, nil
}

// writeFiles writes fs below dir: inline content, or artifacts by CID
// through the Fetcher. Paths may not leave dir, and no symlink below dir is
// followed (dir may belong to an instance).
func (m *Manager) writeFiles(ctx context.Context, dir string, fs []recipes.File, owner account) error {
	for _, f := range fs {
		if !filepath.IsLocal(f.Path) {
			return fmt.Errorf("partition: file path %q leaves its directory", f.Path)
		}
		dest := filepath.Join(dir, f.Path)
		// Parent directories, created component by component, never through a symlink.
		rel, _ := filepath.Rel(dir, filepath.Dir(dest))
		cur := dir
		if rel != "." {
			for _, p := range strings.Split(rel, string(filepath.Separator)) {
				cur = filepath.Join(cur, p)
				if err := mkdirSafe(dir, cur, owner); err != nil {
					return err
				}
				if err := os.Chmod(cur, 0o755); err != nil {
					return err
				}
			}
		}
		if err := checkNoSymlinks(dir, filepath.Dir(dest)); err != nil {
			return err
		}
		mode := f.Mode.Perm()
		if mode == 0 {
			mode = 0o644
		}
		// Whatever is at dest (a planted symlink included) is replaced.
		if err := os.Remove(dest); err != nil && !os.IsNotExist(err) {
			return err
		}
		tmp := dest + ".weft-tmp"
		_ = os.Remove(tmp)
		switch {
		case f.CID != "":
			if m.cfg.Fetcher == nil {
				return fmt.Errorf("%w: %s (%s)", ErrNoFetcher, f.Path, f.CID)
			}
			if err := m.cfg.Fetcher.FetchFile(ctx, f.CID, tmp); err != nil {
				return fmt.Errorf("partition: fetch %s (%s): %w", f.Path, f.CID, err)
			}
		default:
			w, err := os.OpenFile(tmp, os.O_CREATE|os.O_EXCL|os.O_WRONLY|syscall.O_NOFOLLOW, mode)
			if err != nil {
				return err
			}
			_, err = w.WriteString(f.Content)
			if cerr := w.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return err
			}
		}
		if err := os.Chmod(tmp, mode); err != nil { // umask
			return err
		}
		if owner.set() {
			if err := os.Lchown(tmp, owner.UID, owner.GID); err != nil {
				return err
			}
		}
		if err := os.Rename(tmp, dest); err != nil {
			return err
		}
	}
	return nil
}

func tailFile(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}
