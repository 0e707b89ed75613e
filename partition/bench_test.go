package partition

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/weftgrid/weft/partition/metering"
	"github.com/weftgrid/weft/recipes"
)

// BenchmarkStartLatency measures Apply → phase running (processes started,
// test promises passing) for a small HTTP service (the test binary's httpd
// helper, with an HTTP and a TCP promise). The baseline sub-benchmark forks
// the same server directly and polls its port: the ratio is what the
// partition machinery (state persistence, cgroup, rlimits, promise polling)
// adds to a bare fork/exec.
func BenchmarkStartLatency(b *testing.B) {
	b.Run("baseline-exec", func(b *testing.B) {
		base := freePortBase(b, 1)
		addr := "127.0.0.1:" + strconv.Itoa(base)
		for i := 0; i < b.N; i++ {
			cmd := exec.Command(os.Args[0], addr, "hi")
			cmd.Env = append(os.Environ(), "WEFT_PARTITION_HELPER=httpd")
			cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
			if err := cmd.Start(); err != nil {
				b.Fatal(err)
			}
			for {
				c, err := net.Dial("tcp", addr)
				if err == nil {
					c.Close()
					break
				}
				time.Sleep(time.Millisecond)
			}
			b.StopTimer()
			cmd.Process.Kill()
			cmd.Wait()
			b.StartTimer()
		}
	})
	// The same with and without the partition's sandbox (Landlock, private
	// /tmp and IPC as root, seccomp): the ratio is what the sandbox adds.
	b.Run("partition", func(b *testing.B) { benchStart(b, mustParse(webRecipe(os.Args[0], "")), "", true) })
	b.Run("partition-nosandbox", func(b *testing.B) { benchStart(b, mustParse(webRecipe(os.Args[0], "")), "", false) })
	// The example recipe itself, served by 'weft tool httpd' (needs the
	// weft binary: make bench sets WEFT_BIN).
	b.Run("webserver.toml", func(b *testing.B) {
		bin := os.Getenv("WEFT_BIN")
		if bin == "" {
			b.Skip("WEFT_BIN not set (make bench sets it)")
		}
		src, err := os.ReadFile(filepath.Join("..", "recipes", "examples", "webserver.toml"))
		if err != nil {
			b.Fatal(err)
		}
		benchStart(b, mustParse(string(src)), bin, true)
	})
}

// benchStart also reports the node's own CPU per start (this process:
// supervision, promise checks, the sandbox thread; not the instance's).
func benchStart(b *testing.B, rc *recipes.Recipe, weft string, sandboxed bool) {
	{
		cfg := testConfig(b.TempDir())
		if weft != "" {
			cfg.Weft = weft
		}
		cfg.PortBase = freePortBase(b, cfg.Partitions*cfg.PortsPerPartition)
		cfg.SampleInterval, cfg.ReconcileInterval = 2*time.Second, 2*time.Second
		m, err := New(cfg)
		if err != nil {
			b.Fatal(err)
		}
		m.noSandbox = !sandboxed
		if err := m.Start(context.Background()); err != nil {
			b.Fatal(err)
		}
		defer m.Close()
		events, unsub := m.Subscribe()
		defer unsub()
		var cpu0, cpu1 syscall.Rusage
		_ = syscall.Getrusage(syscall.RUSAGE_SELF, &cpu0)
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			id := "web" + strconv.Itoa(i)
			if err := m.Apply(InstanceSpec{ID: id, Recipe: rc, State: StateStarted}); err != nil {
				b.Fatal(err)
			}
			waitEvent(b, events, id, PhaseRunning)
			b.StopTimer()
			if err := m.SetState(id, StateDestroyed); err != nil {
				b.Fatal(err)
			}
			waitEvent(b, events, id, PhaseDestroyed)
			b.StartTimer()
		}
		b.StopTimer()
		_ = syscall.Getrusage(syscall.RUSAGE_SELF, &cpu1)
		cpu := time.Duration(cpu1.Utime.Nano() + cpu1.Stime.Nano() - cpu0.Utime.Nano() - cpu0.Stime.Nano())
		b.ReportMetric(float64(cpu.Microseconds())/1000/float64(b.N), "node-cpu-ms/op")
	}
}

// BenchmarkSandboxStart alternates starts of the same service on two
// nodes of one process, one with the partition sandbox and one without, so
// that load from elsewhere falls on both alike: medians of start latency
// (Apply → running) and of the process's CPU during each start, and their
// ratios.
func BenchmarkSandboxStart(b *testing.B) {
	rc := mustParse(webRecipe(os.Args[0], ""))
	type node struct {
		m      *Manager
		events <-chan InstanceStatus
		lat    []float64
		cpu    []float64
	}
	var nodes [2]*node
	for i := range nodes {
		cfg := testConfig(b.TempDir())
		cfg.PortBase = freePortBase(b, cfg.Partitions*cfg.PortsPerPartition)
		m, err := New(cfg)
		if err != nil {
			b.Fatal(err)
		}
		m.noSandbox = i == 1
		if err := m.Start(context.Background()); err != nil {
			b.Fatal(err)
		}
		defer m.Close()
		events, unsub := m.Subscribe()
		defer unsub()
		nodes[i] = &node{m: m, events: events}
	}
	cpuNow := func() time.Duration {
		var ru syscall.Rusage
		_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for _, n := range nodes {
			id := "web" + strconv.Itoa(i)
			c0, t0 := cpuNow(), time.Now()
			if err := n.m.Apply(InstanceSpec{ID: id, Recipe: rc, State: StateStarted}); err != nil {
				b.Fatal(err)
			}
			waitEvent(b, n.events, id, PhaseRunning)
			n.lat = append(n.lat, float64(time.Since(t0).Microseconds())/1000)
			n.cpu = append(n.cpu, float64((cpuNow()-c0).Microseconds())/1000)
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
	sl, pl := med(nodes[0].lat), med(nodes[1].lat)
	sc, pc := med(nodes[0].cpu), med(nodes[1].cpu)
	b.ReportMetric(sl, "sandboxed-ms")
	b.ReportMetric(pl, "plain-ms")
	b.ReportMetric(sl/pl, "latency-ratio")
	b.ReportMetric(sc, "sandboxed-cpu-ms")
	b.ReportMetric(pc, "plain-cpu-ms")
	b.ReportMetric(0, "ns/op")
}

func waitEvent(b *testing.B, events <-chan InstanceStatus, id string, ph Phase) {
	timeout := time.After(30 * time.Second)
	for {
		select {
		case e := <-events:
			if e.ID == id && e.Phase == ph {
				return
			}
			if e.ID == id && e.Phase == PhaseFailed {
				b.Fatalf("%s failed: %s", id, e.Error)
			}
		case <-timeout:
			b.Fatalf("%s not %s", id, ph)
		}
	}
}

// BenchmarkSupervise50 runs 50 instances (a sleeping process each, with a
// command promise every 10 s) on one node with the default sampling
// intervals, and reports the node's own CPU use (fraction of one core) and
// heap per instance while it supervises and meters them. The baseline is
// the same Manager with no instance over the same window.
func BenchmarkSupervise50(b *testing.B) {
	const n = 50
	const window = 6 * time.Second
	rc := mustParse(`
name = "idle"
version = "1"
[resources]
cpu_millis = 100
[types.default]
[[types.default.processes]]
name = "sleep"
command = "/bin/sleep"
args = ["100000"]
[[types.default.promises]]
name = "alive"
kind = "command"
command = "true"
`)
	measure := func(b *testing.B, instances int) {
		cfg := DefaultConfig()
		cfg.DataDir = b.TempDir()
		cfg.Partitions = n
		cfg.PortsPerPartition = 1
		cfg.Users = false
		cfg.PortBase = 40000
		m, err := New(cfg)
		if err != nil {
			b.Fatal(err)
		}
		if err := m.Start(context.Background()); err != nil {
			b.Fatal(err)
		}
		defer m.Close()
		events, unsub := m.Subscribe()
		for i := 0; i < instances; i++ {
			if err := m.Apply(InstanceSpec{ID: fmt.Sprint("i", i), Recipe: rc, State: StateStarted}); err != nil {
				b.Fatal(err)
			}
		}
		running := map[string]bool{}
		timeout := time.After(2 * time.Minute)
		for len(running) < instances {
			select {
			case e := <-events:
				if e.Phase == PhaseRunning {
					running[e.ID] = true
				}
			case <-timeout:
				b.Fatalf("%d of %d instances running", len(running), instances)
			}
		}
		unsub()
		runtime.GC()
		var ms0 runtime.MemStats
		runtime.ReadMemStats(&ms0)
		cpu0 := selfCPU()
		t0 := time.Now()
		for time.Since(t0) < window {
			time.Sleep(100 * time.Millisecond)
		}
		cpu := selfCPU() - cpu0
		wall := time.Since(t0)
		b.ReportMetric(float64(cpu)/float64(wall)*100, "cpu-%-of-core")
		b.ReportMetric(float64(ms0.HeapAlloc)/(1<<20), "heap-MiB")
	}
	b.Run("baseline-0", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			measure(b, 0)
		}
	})
	b.Run("instances-50", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			measure(b, n)
		}
	})
}

func selfCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkMeteringSlice: the pure slice computation over an hour of 2 s
// samples (1800), for one 60 s slice.
func BenchmarkMeteringSlice(b *testing.B) {
	t0 := time.Unix(1_700_000_000, 0)
	s := make([]metering.Sample, 1800)
	for i := range s {
		s[i] = metering.Sample{At: t0.Add(time.Duration(i) * 2 * time.Second), CPUNanos: int64(i) * 1e8, MemBytes: int64(i%7) << 20, DiskBytes: 1 << 20, NetBytes: -1}
	}
	from := t0.Add(30 * time.Minute)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := metering.Slice(s, from, from.Add(time.Minute)); err != nil {
			b.Fatal(err)
		}
	}
}
