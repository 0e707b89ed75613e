package partition

import (
	"context"
	"fmt"
	"os"
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
func migrateLegacyMarkers(soft string, now time.Time) error {
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
		_, err = mf.WriteString(now.UTC().Format(time.RFC3339) + " (carried over from " + legacyMarker + ")\n")
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
//
// Installs are confined like instances: their commands run in the install
// cgroup with the recipe's largest resources, in a sandbox (Landlock:
// read-write only this software directory; as root a private /tmp), as the
// node's install user, who owns the software directory only during its
// install. One install runs at a time on a node, and every process of the
// install user is killed before it starts and before it is declared done
// (leftovers are killed, not a failure), so no install can reach another's
// tree; once done, the tree is root's, writable by nobody else.
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
	m.installRun.Lock()
	defer m.installRun.Unlock()
	m.killInstalls()
	_ = os.Remove(marker)
	if err := safefs.RemoveAll(dir); err != nil {
		return "", fmt.Errorf("%w: remove an earlier attempt: %v", ErrInstall, err)
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
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
		err := m.runInstall(ctx, dir, rc, cmds, env)
		// Whatever the steps left running dies now, before the tree is
		// taken back and before the next install.
		m.killInstalls()
		if cerr := m.cg.removeNamed(installCgroup); cerr != nil {
			m.cfg.Log.Warn("partition: remove the install cgroup", "err", cerr)
		}
		// Shared software is read-only to instances: give it back to root,
		// writable by nobody else, with no setuid or setgid bit (also after
		// a failure: nothing of the install user stays writable).
		if m.installAs.set() {
			if cerr := safefs.ChownTree(dir, safefs.Owner{UID: 0, GID: 0, LinkedFrom: m.installAs.UID, ClearMode: 0o6022}); cerr != nil && err == nil {
				err = fmt.Errorf("%w: %v", ErrInstall, cerr)
			}
		}
		if err != nil {
			return "", err
		}
	}
	mf, err := os.OpenFile(marker, os.O_CREATE|os.O_EXCL|os.O_WRONLY|syscall.O_NOFOLLOW, 0o644)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrInstall, err)
	}
	_, err = mf.WriteString(m.cfg.Clock.Now().UTC().Format(time.RFC3339) + "\n")
	if cerr := mf.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrInstall, err)
	}
	return dir, nil
}

// killInstalls kills every process of installs: the install cgroup's and
// the install user's (without either, those whose HOME is a software
// directory: see killPartition).
func (m *Manager) killInstalls() {
	ok := m.cg.killAll(installCgroup, killWait)
	if !m.installAs.set() && m.cg.version == "none" {
		home := "HOME=" + m.softDir + string(filepath.Separator)
		ok = killMarked(func(kv string) bool { return strings.HasPrefix(kv, home) }, killWait) && ok
	}
	if !killUser(m.installAs, killWait) || !ok {
		m.cfg.Log.Error("partition: install processes survive SIGKILL")
	}
}

// installResources is what an install may use: the largest resources of
// the recipe's software types (any of them may be the first to install it).
func installResources(rc *recipes.Recipe) recipes.Resources {
	var r recipes.Resources
	for _, t := range rc.Types {
		r.CPUMillis = max(r.CPUMillis, t.Resources.CPUMillis)
		r.MemoryBytes = max(r.MemoryBytes, t.Resources.MemoryBytes)
		r.DiskBytes = max(r.DiskBytes, t.Resources.DiskBytes)
	}
	return r
}

// runInstall runs the install commands of rc in dir, one after the
// other, each started by spawn in the install cgroup and sandbox.
func (m *Manager) runInstall(ctx context.Context, dir string, rc *recipes.Recipe, cmds []string, env map[string]string) error {
	if err := chownTree(dir, m.installAs, -1); err != nil {
		return fmt.Errorf("%w: %v", ErrInstall, err)
	}
	res := installResources(rc)
	if err := m.cg.createNamed(installCgroup, res.CPUMillis, int64(res.MemoryBytes), m.cfg.PidsMax); err != nil {
		return fmt.Errorf("%w: install cgroup: %v", ErrInstall, err)
	}
	disk := int64(res.DiskBytes)
	spec := sandboxSpec{As: m.installAs, Mounts: m.sandbox.PrivateTmp, TmpSize: disk,
		RW: cleanPaths(append([]string{dir}, m.installRW...)...), RO: cleanPaths(m.weft)}
	if m.sandbox.FS {
		spec.ABI = m.sandbox.LandlockABI
	}
	sb, err := openSandbox(spec)
	if err != nil {
		return fmt.Errorf("%w: sandbox: %v", ErrInstall, err)
	}
	defer sb.close()
	timeout := rc.Install.Timeout.D()
	if timeout <= 0 {
		timeout = 10 * time.Minute
	}
	ictx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	logPath := dir + ".install.log"
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC|syscall.O_NOFOLLOW, 0o644)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrInstall, err)
	}
	defer logf.Close()
	envList := []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"HOME=" + dir, "TMPDIR=" + dir, "LANG=C.UTF-8", "WEFT_SOFTWARE=" + dir}
	envList = append(envList, sortedEnv(env)...)
	for i, c := range cmds {
		fmt.Fprintf(logf, "--- weft: install step %d: %s\n", i+1, c)
		cmd, err := m.spawn(spawnSpec{sb: sb, acct: m.installAs, cgroup: installCgroup, nofile: m.cfg.NoFile,
			disk: disk, dir: dir, env: envList, out: logf, path: "/bin/sh", args: []string{"-c", c}})
		if err == nil {
			waited := make(chan error, 1)
			go func() { waited <- cmd.Wait() }()
			select {
			case err = <-waited:
			case <-ictx.Done():
				killGroup(cmd.Process.Pid, syscall.SIGKILL)
				m.killInstalls()
				<-waited
				err = fmt.Errorf("timed out after %s", timeout)
			}
		}
		if err != nil {
			tail := tailFile(logPath, 400)
			return fmt.Errorf("%w: step %d (%s): %v; log %s: %s", ErrInstall, i+1, c, err, logPath, tail)
		}
	}
	return nil
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
