package partition

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// diskRecipe is a recipe with disk = 4MiB running script with /bin/sh.
func diskRecipe(script string, batch bool) string {
	return fmt.Sprintf(`
name = "disk"
version = "1"
[resources]
memory = "128MiB"
disk = "4MiB"
[types.default]
batch = %v
[[types.default.processes]]
name = "main"
command = "/bin/sh"
args = ["-c", %q]
`, batch, script)
}

// hardDiskManager is a manager whose partitions have the hard disk limit,
// or skips the test.
func hardDiskManager(t *testing.T, dir string, mut func(*Config)) (*Manager, Config) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("the hard disk limit needs root (loop mounts)")
	}
	cfg := testConfig(dir)
	cfg.Partitions = 1
	cfg.PortBase = freePortBase(t, cfg.Partitions*cfg.PortsPerPartition)
	if mut != nil {
		mut(&cfg)
	}
	m := startManager(t, cfg)
	if !m.Sandbox().DiskQuota {
		m.Close()
		t.Skipf("no hard disk limit on this host: %v", m.Sandbox().Reasons)
	}
	return m, cfg
}

// mountsOf counts the mounts at dir and the loop devices backed by img.
func mountsOf(t *testing.T, dir, img string) (mounts, loops int) {
	t.Helper()
	ms, err := mountedBelow(filepath.Dir(dir))
	if err != nil {
		t.Fatal(err)
	}
	if ms[dir] {
		mounts = 1
	}
	out, _ := exec.Command("losetup", "-a").Output()
	for _, l := range strings.Split(string(out), "\n") {
		if strings.Contains(l, "("+img) {
			loops++
		}
	}
	return mounts, loops
}

func noMountLeft(t *testing.T, what, dir, img string) {
	t.Helper()
	waitFor(t, what+": no mount or loop device left", func() bool {
		mo, lo := mountsOf(t, dir, img)
		return mo == 0 && lo == 0
	})
}

func TestDiskImageHardLimit(t *testing.T) {
	m, _ := hardDiskManager(t, t.TempDir(), nil)
	defer m.Close()
	dir, img := m.partDir(0), m.disk.image(0)

	// 16 files of 512 KiB against 4 MiB: the writes past it fail.
	fill := `i=0; while [ $i -lt 16 ]; do i=$((i+1)); head -c 524288 /dev/zero > $WEFT_OUT/f$i; done; exit 0`
	rc := mustParse(diskRecipe(fill, true))
	if err := m.Apply(InstanceSpec{ID: "filler", Recipe: rc, State: StateStarted}); err != nil {
		t.Fatal(err)
	}
	var st InstanceStatus
	waitFor(t, "filler to end", func() bool {
		st, _ = m.Get("filler")
		return st.Phase == PhaseFailed || st.Phase == PhaseCompleted
	})
	if !strings.Contains(st.Error, "disk quota exceeded") {
		t.Errorf("error %q, want disk quota exceeded", st.Error)
	}
	if mo, lo := mountsOf(t, dir, img); mo != 1 || lo != 1 {
		t.Errorf("%d mounts at %s, %d loop devices of %s; want 1, 1", mo, dir, lo, img)
	}
	var fi syscall.Stat_t
	if err := syscall.Stat(img, &fi); err != nil {
		t.Fatal(err)
	}
	if used := fi.Blocks * 512; used > 4<<20 {
		t.Errorf("the host holds %d bytes for a partition whose disk is 4 MiB", used)
	}
	if info, err := os.Stat(img); err != nil || info.Mode().Perm() != 0o600 {
		t.Errorf("image %s: %v, want mode 0600", img, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "lost+found")); err == nil {
		t.Error("lost+found in the partition's tree")
	}

	// Destroyed: nothing mounted, no image, no loop device.
	if err := m.Apply(InstanceSpec{ID: "filler", State: StateDestroyed}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "filler gone", func() bool { _, ok := m.Get("filler"); return !ok })
	noMountLeft(t, "destroy", dir, img)
	if _, err := os.Stat(img); err == nil {
		t.Errorf("image %s still there after destroy", img)
	}

	// The next tenant of the slot starts empty.
	look := `ls -A "$HOME" > $WEFT_OUT/ls; exit 0`
	if err := m.Apply(InstanceSpec{ID: "next", Recipe: mustParse(diskRecipe(look, true)), State: StateStarted}); err != nil {
		t.Fatal(err)
	}
	st = waitPhase(t, m, "next", PhaseCompleted)
	got := strings.Fields(readFileString(t, filepath.Join(st.ResultDir, "ls")))
	if strings.Join(got, " ") != "log out tmp" {
		t.Errorf("the next tenant's partition holds %q, want log out tmp", got)
	}
	m.Close()
	noMountLeft(t, "close", dir, img)
}

// A node killed with SIGKILL (here: closed keeping its processes, which
// leaves its mounts too) is restarted: it re-adopts the running instance's
// mount (once), and its Close and destroy leave nothing.
func TestDiskImageRestart(t *testing.T) {
	data := t.TempDir()
	m, cfg := hardDiskManager(t, data, func(c *Config) { c.KeepRunningOnClose = true })
	dir, img := m.partDir(0), m.disk.image(0)
	svc := `echo run >> "$HOME/runs"; exec sleep 1000`
	rc := mustParse(diskRecipe(svc, false))
	if err := m.Apply(InstanceSpec{ID: "svc", Recipe: rc, State: StateStarted}); err != nil {
		t.Fatal(err)
	}
	waitPhase(t, m, "svc", PhaseRunning)
	waitFor(t, "the file written", func() bool { _, err := os.Stat(filepath.Join(dir, "runs")); return err == nil })
	m.Close()
	if mo, lo := mountsOf(t, dir, img); mo != 1 || lo != 1 {
		t.Fatalf("after a kept close: %d mounts, %d loops; want 1, 1", mo, lo)
	}

	cfg.KeepRunningOnClose = false
	m2 := startManager(t, cfg)
	waitPhase(t, m2, "svc", PhaseRunning)
	if mo, lo := mountsOf(t, dir, img); mo != 1 || lo != 1 {
		t.Errorf("after restart: %d mounts, %d loops; want 1, 1", mo, lo)
	}
	m2.Close()
	noMountLeft(t, "close", dir, img)

	// Started again: the image is mounted again, with the tenant's files.
	m3 := startManager(t, cfg)
	defer m3.Close()
	waitPhase(t, m3, "svc", PhaseRunning)
	// The first run's line is still there (the image, not a fresh tree).
	waitFor(t, "the second run's line", func() bool {
		b, _ := os.ReadFile(filepath.Join(dir, "runs"))
		return string(b) == "run\nrun\n"
	})
	if err := m3.Apply(InstanceSpec{ID: "svc", State: StateDestroyed}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "svc gone", func() bool { _, ok := m3.Get("svc"); return !ok })
	noMountLeft(t, "destroy", dir, img)
}

// BenchmarkDiskImageStart alternates starts of a new service instance
// (disk = 256 MiB, the default) on two nodes of one process, one with the
// hard disk limit (a fresh image: mkfs and mount) and one metered only:
// medians of start latency (Apply → running) and their ratio.
func BenchmarkDiskImageStart(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("the hard disk limit needs root")
	}
	rc := mustParse(webRecipe(os.Args[0], ""))
	type node struct {
		m      *Manager
		events <-chan InstanceStatus
		lat    []float64
	}
	var nodes [2]*node
	for i := range nodes {
		cfg := testConfig(b.TempDir())
		cfg.PortBase = freePortBase(b, cfg.Partitions*cfg.PortsPerPartition)
		m, err := New(cfg)
		if err != nil {
			b.Fatal(err)
		}
		if i == 0 && !m.sandbox.DiskQuota {
			b.Skipf("no hard disk limit: %v", m.sandbox.Reasons)
		}
		if i == 1 {
			m.sandbox.DiskQuota = false
		}
		if err := m.Start(context.Background()); err != nil {
			b.Fatal(err)
		}
		defer m.Close()
		events, unsub := m.Subscribe()
		defer unsub()
		nodes[i] = &node{m: m, events: events}
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for _, n := range nodes {
			id := "web" + strconv.Itoa(i)
			t0 := time.Now()
			if err := n.m.Apply(InstanceSpec{ID: id, Recipe: rc, State: StateStarted}); err != nil {
				b.Fatal(err)
			}
			waitEvent(b, n.events, id, PhaseRunning)
			n.lat = append(n.lat, float64(time.Since(t0).Microseconds())/1000)
			if err := n.m.SetState(id, StateDestroyed); err != nil {
				b.Fatal(err)
			}
			waitEvent(b, n.events, id, PhaseDestroyed)
		}
	}
	b.StopTimer()
	med := func(v []float64) float64 {
		v = append([]float64(nil), v...)
		sort.Float64s(v)
		return v[len(v)/2]
	}
	il, ml := med(nodes[0].lat), med(nodes[1].lat)
	b.ReportMetric(il, "image-ms")
	b.ReportMetric(ml, "metered-ms")
	b.ReportMetric(il/ml, "latency-ratio")
	b.ReportMetric(0, "ns/op")
}

// A node killed with SIGKILL leaves its partitions' images mounted: the
// next run adopts the held slot's mount (still one), unmounts and deletes
// what belongs to no held slot, and leaves nothing once closed and
// destroyed.
func TestDiskImageNodeKill9(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the hard disk limit needs root (loop mounts)")
	}
	dir := t.TempDir()
	base := freePortBase(t, 6)
	node := exec.Command(os.Args[0], dir, strconv.Itoa(base))
	node.Env = append(os.Environ(), "WEFT_PARTITION_HELPER=node")
	node.Stderr = os.Stderr
	out, err := node.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := node.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		node.Process.Kill()
		t.Fatal(err)
	}
	var st InstanceStatus
	if err := json.Unmarshal([]byte(line), &st); err != nil {
		t.Fatal(err)
	}
	if err := node.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	node.Wait()

	cfg := testConfig(dir)
	cfg.PortBase = base
	probe, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	hard := probe.sandbox.DiskQuota
	probe.Close()
	d := diskImages{dir: filepath.Join(dir, "disk"), parts: filepath.Join(dir, "partitions")}
	held := filepath.Join(d.parts, strconv.Itoa(st.Partition))
	if !hard {
		t.Skip("no hard disk limit on this host")
	}
	if mo, lo := mountsOf(t, held, d.image(st.Partition)); mo != 1 || lo != 1 {
		t.Fatalf("after SIGKILL: %d mounts, %d loops of the held slot; want 1, 1", mo, lo)
	}
	// A stale image of a slot no instance holds, mounted.
	stray := 2
	strayDir := filepath.Join(d.parts, strconv.Itoa(stray))
	if err := os.MkdirAll(strayDir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := makeImage(d.image(stray), 1<<20, 0, 0); err != nil {
		t.Fatal(err)
	}
	if err := mountImage(d.image(stray), strayDir, false); err != nil {
		t.Fatal(err)
	}

	m := startManager(t, cfg)
	waitPhase(t, m, "web", PhaseRunning)
	if mo, lo := mountsOf(t, held, d.image(st.Partition)); mo != 1 || lo != 1 {
		t.Errorf("after restart: %d mounts, %d loops of the held slot; want 1, 1", mo, lo)
	}
	noMountLeft(t, "restart (stray slot)", strayDir, d.image(stray))
	if _, err := os.Stat(d.image(stray)); err == nil {
		t.Error("the stray slot's image is still there")
	}
	if err := m.Apply(InstanceSpec{ID: "web", State: StateDestroyed}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "web gone", func() bool { _, ok := m.Get("web"); return !ok })
	m.Close()
	noMountLeft(t, "destroy", held, d.image(st.Partition))
}

// A partition holding files but no image (its instance started before the
// hard limit) is not mounted over (that would hide them): it stays
// metered, and status says disk_quota is not in force for every
// partition, until its instance is destroyed.
func TestDiskImageLegacyPartition(t *testing.T) {
	m, _ := hardDiskManager(t, t.TempDir(), nil)
	defer m.Close()
	dir := m.partDir(0)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "old"), []byte("data\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	rc := mustParse(diskRecipe(`exec sleep 1000`, false))
	if err := m.Apply(InstanceSpec{ID: "old", Recipe: rc, State: StateStarted}); err != nil {
		t.Fatal(err)
	}
	waitPhase(t, m, "old", PhaseRunning)
	if isMountPoint(dir) {
		t.Error("an image was mounted over a partition's existing files")
	}
	if got := readFileString(t, filepath.Join(dir, "old")); got != "data" {
		t.Errorf("the partition's file holds %q", got)
	}
	if sb := m.Sandbox(); sb.DiskQuota {
		t.Errorf("disk_quota true while partition 0 is metered only: %+v", sb)
	}
	if err := m.Apply(InstanceSpec{ID: "old", State: StateDestroyed}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "old gone", func() bool { _, ok := m.Get("old"); return !ok })
	if sb := m.Sandbox(); !sb.DiskQuota {
		t.Errorf("disk_quota false after the legacy partition was destroyed: %v", sb.Reasons)
	}
}
