package partition

import (
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/weftgrid/weft/recipes/safefs"
)

// account is a Unix user processes run as; the zero value means "as the node".
type account struct {
	Name string
	UID  int
	GID  int
}

func (a account) set() bool { return a.Name != "" }

var useraddMu sync.Mutex

// ensureUser returns the user called name, creating it as a system user
// without a login shell or home when it is missing.
func ensureUser(name string) (account, error) {
	if u, err := user.Lookup(name); err == nil {
		return toAccount(u)
	}
	useraddMu.Lock()
	defer useraddMu.Unlock()
	if u, err := user.Lookup(name); err == nil {
		return toAccount(u)
	}
	path, err := exec.LookPath("useradd")
	if err != nil {
		return account{}, fmt.Errorf("partition: user %s missing and no useradd: %w", name, err)
	}
	shell := "/usr/sbin/nologin"
	if _, err := os.Stat(shell); err != nil {
		shell = "/bin/false"
	}
	out, err := exec.Command(path, "--system", "--user-group", "--no-create-home",
		"--home-dir", "/nonexistent", "--shell", shell, name).CombinedOutput()
	if err != nil {
		return account{}, fmt.Errorf("partition: useradd %s: %v: %s", name, err, strings.TrimSpace(string(out)))
	}
	u, err := user.Lookup(name)
	if err != nil {
		return account{}, fmt.Errorf("partition: user %s after useradd: %w", name, err)
	}
	return toAccount(u)
}

func toAccount(u *user.User) (account, error) {
	uid, err1 := strconv.Atoi(u.Uid)
	gid, err2 := strconv.Atoi(u.Gid)
	if err1 != nil || err2 != nil {
		return account{}, fmt.Errorf("partition: user %s has non-numeric ids", u.Username)
	}
	return account{Name: u.Username, UID: uid, GID: gid}, nil
}

// chownTree gives dir and everything below it to a (no-op when a is unset),
// walking from directory descriptors (safefs): symbolic links are changed
// themselves, never followed, and nothing outside dir is reached whatever
// is swapped meanwhile. A file with several hard links keeps its owner
// unless it belongs to linkedFrom (-1: nobody): a hard link planted in the
// tree may name a file outside it.
func chownTree(dir string, a account, linkedFrom int) error {
	if !a.set() {
		return nil
	}
	return safefs.ChownTree(dir, safefs.Owner{UID: a.UID, GID: a.GID, LinkedFrom: linkedFrom})
}

// removeOwnUsers deletes the node's partition and install users when they
// have their default names (unique to this node) and it closes with no
// instance left: like its run directory, a node that runs nothing leaves
// no users behind (test suites and demos start many nodes in fresh data
// dirs, each with users of its own). Nothing of those users outlives them:
// partitions are wiped at destroy and software belongs to root. The next
// start creates them again.
func (m *Manager) removeOwnUsers() {
	if !m.ownUsers {
		return
	}
	path, err := exec.LookPath("userdel")
	if err != nil {
		return
	}
	useraddMu.Lock()
	defer useraddMu.Unlock()
	for _, a := range append(slices.Clone(m.users), m.installAs) {
		if !a.set() || !strings.HasPrefix(a.Name, m.cfg.UserPrefix) {
			continue
		}
		killUser(a, killWait)
		if out, err := exec.Command(path, a.Name).CombinedOutput(); err != nil {
			m.cfg.Log.Warn("partition: delete the node's user", "user", a.Name, "err", err, "out", strings.TrimSpace(string(out)))
		}
	}
}

// DeleteNodeUsers deletes the default-named partition and install users of
// the node whose data dir is dataDir (NodeUserPrefix), for partitions 0 to
// partitions-1, after killing their processes: for whoever removes a
// node's data dir for good (test suites), whose users nothing needs any
// more.
// Users that do not exist are skipped; without root or userdel it does
// nothing.
func DeleteNodeUsers(dataDir string, partitions int) {
	if os.Geteuid() != 0 {
		return
	}
	abs, err := filepath.Abs(dataDir)
	if err != nil {
		return
	}
	path, err := exec.LookPath("userdel")
	if err != nil {
		return
	}
	prefix := NodeUserPrefix(abs)
	names := []string{prefix + "install"}
	for i := 0; i < partitions; i++ {
		names = append(names, prefix+strconv.Itoa(i))
	}
	useraddMu.Lock()
	defer useraddMu.Unlock()
	for _, name := range names {
		u, err := user.Lookup(name)
		if err != nil {
			continue
		}
		if a, err := toAccount(u); err == nil {
			killUser(a, killWait)
		}
		_ = exec.Command(path, name).Run()
	}
}
