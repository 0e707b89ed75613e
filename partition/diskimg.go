package partition

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"

	"github.com/prometheus/procfs"
	"golang.org/x/sys/unix"
)

// Hard disk limit (as root): each partition's directory is the mount point
// of a loop-mounted ext4 image the size of its instance's disk resource,
// so a write past it fails with ENOSPC however fast it comes. The images
// live outside every tenant's tree, in <base>/disk/N.img (root, 0700
// directory, 0600 files), and are mounted nosuid,nodev. An image belongs
// to the partition slot while an instance holds it: it is created (mkfs)
// when the slot is first used, mounted again on a restart of the instance
// or of the node (its files are the instance's), resized when the disk
// resource changes, and unmounted and deleted when the instance is
// destroyed — the next tenant of the slot starts with a fresh, empty file
// system. Close unmounts (unless processes are kept running); a node
// restarted after SIGKILL re-adopts the mounts of the partitions it still
// holds and unmounts the others (found in /proc/self/mountinfo).
//
// The private /tmp and /dev/shm of the sandbox stay separate tmpfs, each
// capped at the disk resource (a hard limit too) and metered with the
// partition's tree. Without root, or when the probe at New could not make
// and mount an image, the disk resource is only metered (run.go).

// diskImages manages the images of a Manager's partitions.
type diskImages struct {
	dir   string // <base>/disk
	parts string // the partitions directory (mount points below it)
}

// errDiskImage prefixes failures of the hard disk limit.
var errDiskImage = errors.New("partition: disk image")

// errDiskLegacy: a partition holds files but no image (its instance
// started before the hard limit): mounting an image would hide them.
var errDiskLegacy = errors.New("partition: files from before the hard disk limit")

// emptyTree reports whether dir holds nothing but empty tmp/ and log/
// directories (what preparePartition makes).
func emptyTree(dir string) bool {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return false
	}
	for _, e := range ents {
		if n := e.Name(); !e.IsDir() || n != "tmp" && n != "log" {
			return false
		}
		if sub, err := os.ReadDir(filepath.Join(dir, e.Name())); err != nil || len(sub) > 0 {
			return false
		}
	}
	return true
}

func (d diskImages) image(idx int) string { return filepath.Join(d.dir, strconv.Itoa(idx)+".img") }

// fresh is where a never-mounted image for the slot's next tenant waits
// (made at destroy, off the start path).
func (d diskImages) fresh(idx int) string {
	return filepath.Join(d.dir, strconv.Itoa(idx)+".fresh")
}

// mountedBelow returns the mount points of the node's mount namespace
// that lie strictly below root.
func mountedBelow(root string) (map[string]bool, error) {
	// The calling thread's own namespace (/proc/TID), not the main
	// thread's (/proc/self): the main thread is kept out of sandboxes
	// (mainthread.go), but what is asked here is the namespace this
	// thread, and the tools this file runs from unlocked threads, see.
	runtime.LockOSThread()
	ms, err := procfs.GetProcMounts(unix.Gettid())
	runtime.UnlockOSThread()
	if err != nil {
		return nil, err
	}
	out := map[string]bool{}
	prefix := filepath.Clean(root) + string(filepath.Separator)
	for _, mi := range ms {
		if strings.HasPrefix(mi.MountPoint, prefix) {
			out[mi.MountPoint] = true
		}
	}
	return out, nil
}

func isMountPoint(dir string) bool {
	ms, err := mountedBelow(filepath.Dir(dir))
	return err == nil && ms[filepath.Clean(dir)]
}

func runTool(name string, args ...string) error {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %v: %s", name, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// makeImage creates a fresh ext4 image of size bytes at img whose root
// belongs to uid:gid, mode 0700.
func makeImage(img string, size int64, uid, gid int) error {
	_ = os.Remove(img)
	f, err := os.OpenFile(img, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	err = f.Truncate(size)
	f.Close()
	if err == nil {
		err = runTool("mkfs.ext4", "-q", "-F", "-m", "0", "-E", fmt.Sprintf("root_owner=%d:%d", uid, gid), img)
	}
	if err != nil {
		os.Remove(img)
	}
	return err
}

// mountImage mounts img on dir (nosuid, nodev). On a fresh image it
// removes ext4's lost+found, so that the tree holds only what the tenant
// writes; on an image mounted again, a lost+found is the tenant's own.
func mountImage(img, dir string, fresh bool) error {
	if err := mountLoop(img, dir); err != nil {
		// mount(8) knows more setups (e.g. /dev without devtmpfs).
		if err := runTool("mount", "-t", "ext4", "-o", "loop,nosuid,nodev", img, dir); err != nil {
			return err
		}
	}
	if fresh {
		_ = os.Remove(filepath.Join(dir, "lost+found"))
	}
	return nil
}

// unmount detaches the file system mounted on dir (lazily when busy: the
// loop device is freed with its last user).
func unmount(dir string) error {
	err := unix.Unmount(dir, 0)
	if errors.Is(err, unix.EBUSY) {
		err = unix.Unmount(dir, unix.MNT_DETACH)
	}
	if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOENT) {
		return nil // not mounted
	}
	return err
}

// ensure gives partition idx (directory dir, already made) its image of
// size bytes, mounted: kept as it is when mounted with that size, mounted
// again when it exists, resized when its size changed, created otherwise.
// Nothing of the partition runs (the caller killed it).
func (d diskImages) ensure(idx int, dir string, size int64, acct account) error {
	if err := os.MkdirAll(d.dir, 0o700); err != nil {
		return fmt.Errorf("%w: %v", errDiskImage, err)
	}
	img := d.image(idx)
	fi, err := os.Stat(img)
	mounted := isMountPoint(dir)
	fresh := false
	switch {
	case err == nil && fi.Size() == size && mounted:
		return nil
	case err == nil && fi.Size() != size:
		if mounted {
			if err := unmount(dir); err != nil {
				return fmt.Errorf("%w: unmount %s: %v", errDiskImage, dir, err)
			}
		}
		if err := resizeImage(img, fi.Size(), size); err != nil {
			return fmt.Errorf("%w: resize %s to %d bytes: %v", errDiskImage, img, size, err)
		}
	case err == nil:
	default:
		fresh = true
		if !mounted && !emptyTree(dir) {
			return errDiskLegacy
		}
		if mounted { // a file system that is not this node's image
			if err := unmount(dir); err != nil {
				return fmt.Errorf("%w: unmount %s: %v", errDiskImage, dir, err)
			}
		}
		if fi, err := os.Stat(d.fresh(idx)); err != nil || fi.Size() != size || os.Rename(d.fresh(idx), img) != nil {
			_ = os.Remove(d.fresh(idx))
			uid, gid := acctIDs(acct)
			if err := makeImage(img, size, uid, gid); err != nil {
				return fmt.Errorf("%w: %v", errDiskImage, err)
			}
		}
	}
	if err := mountImage(img, dir, fresh); err != nil {
		return fmt.Errorf("%w: %v", errDiskImage, err)
	}
	return nil
}

// resizeImage grows or shrinks the (unmounted) file system of img.
func resizeImage(img string, from, to int64) error {
	if err := runTool("e2fsck", "-f", "-p", img); err != nil {
		return err
	}
	if to > from {
		if err := os.Truncate(img, to); err != nil {
			return err
		}
	}
	if err := runTool("resize2fs", "-f", img, strconv.FormatInt(to/1024, 10)+"K"); err != nil {
		return err
	}
	if to < from {
		return os.Truncate(img, to)
	}
	return nil
}

func acctIDs(acct account) (uid, gid int) {
	if acct.set() {
		return acct.UID, acct.GID
	}
	return os.Geteuid(), os.Getegid()
}

// release unmounts partition idx's directory and deletes its image, then
// makes a fresh image of the same size for the slot's next tenant (never
// mounted: nothing of this tenant is in it).
func (d diskImages) release(idx int, dir string, acct account) error {
	if err := unmount(dir); err != nil {
		return fmt.Errorf("%w: unmount %s: %v", errDiskImage, dir, err)
	}
	fi, err := os.Stat(d.image(idx))
	if err != nil {
		return nil
	}
	if err := os.Remove(d.image(idx)); err != nil {
		return fmt.Errorf("%w: %v", errDiskImage, err)
	}
	uid, gid := acctIDs(acct)
	_ = makeImage(d.fresh(idx), fi.Size(), uid, gid) // best effort: made at the next start otherwise
	return nil
}

// unmountAll unmounts every partition directory (Close): images stay for
// the next run.
func (d diskImages) unmountAll() { _ = UnmountBelow(d.parts) }

// sweep, at Start, unmounts what is mounted below the partitions directory
// but not a held partition's directory, and deletes the images of slots
// no instance holds (what a node killed with SIGKILL left behind).
func (d diskImages) sweep(held map[int]string) {
	keep := map[string]bool{}
	for _, dir := range held {
		keep[filepath.Clean(dir)] = true
	}
	ms, _ := mountedBelow(d.parts)
	for mp := range ms {
		if !keep[mp] {
			_ = unmount(mp)
		}
	}
	ents, _ := os.ReadDir(d.dir)
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".fresh") {
			continue // never mounted: no tenant's data
		}
		n, ok := strings.CutSuffix(e.Name(), ".img")
		idx, err := strconv.Atoi(n)
		if _, h := held[idx]; ok && err == nil && h {
			continue
		}
		_ = os.Remove(filepath.Join(d.dir, e.Name()))
	}
}

// probeDiskImage makes, mounts, fills and unmounts a small image below
// dir: the hard limit works on this host when a write past it fails.
func probeDiskImage(dir string) error {
	if os.Geteuid() != 0 {
		return errors.New("the node does not run as root (no loop mounts)")
	}
	for _, c := range []string{"mkfs.ext4", "mount", "e2fsck", "resize2fs"} {
		if _, err := exec.LookPath(c); err != nil {
			return fmt.Errorf("%s not found (packages e2fsprogs, mount)", c)
		}
	}
	img, mp := filepath.Join(dir, "disk-probe.img"), filepath.Join(dir, "disk-probe")
	if err := os.Mkdir(mp, 0o700); err != nil {
		return err
	}
	if err := makeImage(img, 1<<20, 0, 0); err != nil {
		return err
	}
	defer os.Remove(img)
	if err := mountImage(img, mp, true); err != nil {
		return err
	}
	defer unmount(mp)
	f, err := os.Create(filepath.Join(mp, "fill"))
	if err != nil {
		return err
	}
	defer f.Close()
	buf := make([]byte, 64<<10)
	for written := 0; written <= 2<<20; written += len(buf) {
		if _, err := f.Write(buf); err != nil {
			if errors.Is(err, unix.ENOSPC) {
				return nil
			}
			return err
		}
	}
	return errors.New("a 1 MiB image took 2 MiB")
}

// recoverDiskImages, at Start, mounts again the images of the partitions
// instances still hold (before their processes are adopted: the sandbox
// of an adopted run must see the image, not the directory under it), and
// unmounts and deletes the rest.
func (m *Manager) recoverDiskImages(ins []*instance) {
	held := map[int]string{}
	m.mu.Lock()
	for _, in := range ins {
		if p := in.rec.Partition; p >= 0 && p < len(m.slots) && m.slots[p] == in.rec.ID {
			held[p] = m.partDir(p)
		}
	}
	m.mu.Unlock()
	m.disk.sweep(held)
	for idx, dir := range held {
		if _, err := os.Stat(m.disk.image(idx)); err != nil || isMountPoint(dir) {
			continue
		}
		if err := mountImage(m.disk.image(idx), dir, false); err != nil {
			m.cfg.Log.Warn("partition: mount the partition's disk image", "partition", idx, "err", err)
		}
	}
}

// fullSlack is how close to full a partition's file system counts as full
// (a write that failed with ENOSPC may leave a few blocks, and the logs
// take some after it).
const fullSlack = 64 << 10

// imageFull reports whether dir is a mount point whose file system is
// (within fullSlack of) full: a write of the partition hit the hard limit
// (ENOSPC), which fails a batch run like the metered limit does.
func imageFull(dir string) bool {
	if !isMountPoint(dir) {
		return false
	}
	var fs unix.Statfs_t
	return unix.Statfs(dir, &fs) == nil && int64(fs.Bavail)*fs.Bsize < fullSlack
}

// mountLoop attaches img to a free loop device (auto-cleared: the device
// is freed when the file system on it is unmounted) and mounts it on dir
// with system calls, without mount(8)'s fork and exec.
func mountLoop(img, dir string) error {
	ctl, err := os.OpenFile("/dev/loop-control", os.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer ctl.Close()
	f, err := os.OpenFile(img, os.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	for try := 0; try < 8; try++ {
		n, err := unix.IoctlRetInt(int(ctl.Fd()), unix.LOOP_CTL_GET_FREE)
		if err != nil {
			return err
		}
		dev := "/dev/loop" + strconv.Itoa(n)
		lf, err := os.OpenFile(dev, os.O_RDWR|unix.O_CLOEXEC, 0)
		if err != nil {
			return err
		}
		cfg := unix.LoopConfig{Fd: uint32(f.Fd())}
		cfg.Info.Flags = unix.LO_FLAGS_AUTOCLEAR
		copy(cfg.Info.File_name[:], img)
		if err := unix.IoctlLoopConfigure(int(lf.Fd()), &cfg); err != nil {
			lf.Close()
			if errors.Is(err, unix.EBUSY) { // taken meanwhile by another
				continue
			}
			return err
		}
		err = unix.Mount(dev, dir, "ext4", unix.MS_NOSUID|unix.MS_NODEV, "")
		lf.Close() // the mount holds the device; on failure it is freed
		return err
	}
	return errors.New("no free loop device")
}

// UnmountBelow detaches every file system mounted strictly below root,
// deepest first: the disk images of a node that is gone for good (killed
// and never restarted on its data dir), for whoever removes that data dir.
// A node that starts on the data dir again needs none of this: it adopts
// or unmounts what it finds. Busy mounts are detached lazily; their loop
// devices are freed with their last user.
func UnmountBelow(root string) error {
	ms, err := mountedBelow(root)
	if err != nil {
		return err
	}
	points := make([]string, 0, len(ms))
	for p := range ms {
		points = append(points, p)
	}
	// Deepest first: a mount inside another one goes before it.
	sort.Slice(points, func(i, j int) bool { return len(points[i]) > len(points[j]) })
	var errs []error
	for _, p := range points {
		if err := unmount(p); err != nil {
			errs = append(errs, fmt.Errorf("partition: unmount %s: %w", p, err))
		}
	}
	return errors.Join(errs...)
}
