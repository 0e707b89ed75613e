package partition

import (
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
)

// Two nodes on one machine never share a partition or install user by
// default, and the names are valid Linux user names.
func TestNodeUsersAreUniqueToTheNode(t *testing.T) {
	valid := regexp.MustCompile(`^[a-z][-a-z0-9]*$`)
	a, b := NodeUserPrefix("/var/lib/one/.weft"), NodeUserPrefix("/var/lib/two/.weft")
	if a == b {
		t.Fatalf("two data dirs share the user prefix %q", a)
	}
	if NodeUserPrefix("/var/lib/one/.weft") != a {
		t.Fatal("the prefix of a data dir changes")
	}
	for _, name := range []string{a + "0", a + strconv.Itoa(4095), a + "install"} {
		if len(name) > 32 || !valid.MatchString(name) {
			t.Errorf("user name %q: not a valid Linux user name of at most 32 characters", name)
		}
	}
	cfg := testConfig(t.TempDir())
	cfg.UserPrefix, cfg.InstallUser = "", ""
	cfg.PortBase = freePortBase(t, cfg.Partitions*cfg.PortsPerPartition)
	m, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if want := NodeUserPrefix(m.cfg.DataDir); m.cfg.UserPrefix != want || m.cfg.InstallUser != want+"install" {
		t.Fatalf("users %q and %q, want the node's prefix %q", m.cfg.UserPrefix, m.cfg.InstallUser, want)
	}
}

// A root node with its default users deletes them when it closes with no
// instance: nodes that come and go (tests, demos) leave no users behind.
func TestNodeUsersGoWithAnEmptyNode(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("partition users need root")
	}
	if _, err := exec.LookPath("userdel"); err != nil {
		t.Skip("no userdel here")
	}
	dir := t.TempDir()
	for d := dir; d != "/" && d != os.TempDir(); d = filepath.Dir(d) {
		os.Chmod(d, 0o711) // t.TempDir's parents are 0700
	}
	cfg := testConfig(dir)
	cfg.Users, cfg.UserPrefix, cfg.InstallUser = true, "", ""
	cfg.PortBase = freePortBase(t, cfg.Partitions*cfg.PortsPerPartition)
	m := startManager(t, cfg)
	names := []string{m.cfg.InstallUser}
	for i := 0; i < cfg.Partitions; i++ {
		names = append(names, m.cfg.UserPrefix+strconv.Itoa(i))
	}
	for _, n := range names {
		if _, err := user.Lookup(n); err != nil {
			t.Fatalf("user %s not created: %v", n, err)
		}
	}
	m.Close()
	for _, n := range names {
		if _, err := user.Lookup(n); err == nil {
			t.Errorf("user %s left after the node closed with no instance", n)
		}
	}
}
