package partition

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"golang.org/x/sys/unix"
)

// ErrNoLog means an instance has no such process log (or no partition, so
// no logs at all).
var ErrNoLog = errors.New("partition: no such log")

// logNameRe is what a process log's name may be: a recipe's process name.
var logNameRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)

// openLogDir opens the log directory of instance id's partition from
// descriptors: the partition's directory (in the node's partitions
// directory, which instances cannot change) without following a symlink,
// then "log" beneath it the same way. The instance owns both and may swap
// anything in them; what is opened from the returned descriptor stays in
// that directory.
func (m *Manager) openLogDir(id string) (int, error) {
	st, ok := m.Get(id)
	if !ok || st.Partition < 0 {
		return -1, fmt.Errorf("%w: instance %s has no partition on this node", ErrNoLog, id)
	}
	pfd, err := openDirNoFollow(m.partDir(st.Partition))
	if err != nil {
		return -1, err
	}
	defer unix.Close(pfd)
	fd, err := unix.Openat(pfd, "log", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, unix.ENOENT) {
			return -1, fmt.Errorf("%w: instance %s wrote no log yet", ErrNoLog, id)
		}
		return -1, fmt.Errorf("%w: %s/log: %v", errSymlink, m.partDir(st.Partition), err)
	}
	return fd, nil
}

// Logs returns the names of the process logs of instance id (running or
// stopped, while its partition is kept), sorted: the processes' names,
// without ".log" (rotated copies are not listed).
func (m *Manager) Logs(id string) ([]string, error) {
	fd, err := m.openLogDir(id)
	if err != nil {
		return nil, err
	}
	d := os.NewFile(uintptr(fd), "log")
	defer d.Close()
	ents, err := d.ReadDir(4096)
	if err != nil && len(ents) == 0 {
		return nil, fmt.Errorf("partition: reading the log directory: %w", err)
	}
	var out []string
	for _, e := range ents {
		name, ok := strings.CutSuffix(e.Name(), ".log")
		if ok && e.Type().IsRegular() && logNameRe.MatchString(name) {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out, nil
}

// OpenLog opens the log of process name of instance id for reading: a
// regular file directly in the partition's log directory, opened from that
// directory's descriptor without following a symlink and without blocking
// on a FIFO. A name that is not a process name (a path, "..") is refused.
func (m *Manager) OpenLog(id, name string) (*os.File, error) {
	if !logNameRe.MatchString(name) || filepath.Base(name) != name {
		return nil, fmt.Errorf("%w: %q is not a process name", ErrNoLog, name)
	}
	fd, err := m.openLogDir(id)
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	f, err := openRegularAt(fd, name+".log", os.O_RDONLY, 0)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%w: no process %q in instance %s", ErrNoLog, name, id)
		}
		return nil, err
	}
	return f, nil
}
