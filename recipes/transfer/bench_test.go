package transfer_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/security/noise"

	"github.com/weftgrid/weft/recipes/store"
	"github.com/weftgrid/weft/recipes/transfer"
)

// benchBytes is the size of the artifact both benchmarks move.
const benchBytes = 64 << 20

// noiseHost is a loopback TCP host with Noise only, as the brief's P8
// baseline (≈ 965 MiB/s) was measured.
func noiseHost(b *testing.B) host.Host {
	b.Helper()
	h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"),
		libp2p.Security(noise.ID, noise.New), libp2p.DisableRelay())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { h.Close() })
	return h
}

// serveRaw makes h answer "/bench/raw" streams with benchBytes in 256 KiB
// writes: the raw stream P8 compares a fetch with.
func serveRaw(h host.Host) {
	buf := make([]byte, 256<<10)
	h.SetStreamHandler("/bench/raw", func(s network.Stream) {
		defer s.Close()
		w := bufio.NewWriterSize(s, 256<<10)
		for sent := 0; sent < benchBytes; sent += len(buf) {
			if _, err := w.Write(buf); err != nil {
				return
			}
		}
		_ = w.Flush()
	})
}

// BenchmarkRawStream is the baseline of P8: benchBytes over one raw libp2p
// stream (TCP loopback, Noise, yamux), read and discarded.
func BenchmarkRawStream(b *testing.B) {
	a, c := noiseHost(b), noiseHost(b)
	serveRaw(a)
	if err := c.Connect(context.Background(), peer.AddrInfo{ID: a.ID(), Addrs: a.Addrs()}); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(benchBytes)
	cpu := startCPU()
	b.ResetTimer()
	for b.Loop() {
		s, err := c.NewStream(context.Background(), a.ID(), "/bench/raw")
		if err != nil {
			b.Fatal(err)
		}
		n, err := io.Copy(io.Discard, s)
		if err != nil || n != benchBytes {
			b.Fatalf("read %d bytes: %v", n, err)
		}
		s.Close()
	}
	cpu.report(b)
}

// BenchmarkFetch is P8: a benchBytes artifact fetched by CID with the
// content protocol over the same kind of connection as BenchmarkRawStream,
// every 1 MiB chunk verified against its hash and written into the
// fetcher's store, synced at the end. The stores live on a memory-backed
// file system (/dev/shm) when there is one, so that the figure measures the
// protocol and not the disk; BenchmarkFetchDisk is the same on disk.
func BenchmarkFetch(b *testing.B) { benchFetch(b, shmDir(b)) }

// BenchmarkFetchDisk is BenchmarkFetch with the stores on the disk of the
// test's temporary directory (bounded by the disk's write bandwidth).
func BenchmarkFetchDisk(b *testing.B) { benchFetch(b, b.TempDir) }

func shmDir(b *testing.B) func() string {
	if st, err := os.Stat("/dev/shm"); err != nil || !st.IsDir() {
		return b.TempDir
	}
	return func() string {
		d, err := os.MkdirTemp("/dev/shm", "weft-bench-")
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { os.RemoveAll(d) })
		return d
	}
}

func benchFetch(b *testing.B, dir func() string) {
	a, c := noiseHost(b), noiseHost(b)
	pst, err := store.Open(dir())
	if err != nil {
		b.Fatal(err)
	}
	root, err := pst.PutBytes(randBytes(benchBytes))
	if err != nil {
		b.Fatal(err)
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	prov, _ := transfer.New(a, pst, nil, transfer.DefaultConfig(), quiet)
	_ = prov.Start(context.Background())
	b.Cleanup(func() { prov.Close() })
	if err := c.Connect(context.Background(), peer.AddrInfo{ID: a.ID(), Addrs: a.Addrs()}); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(benchBytes)
	cpu := startCPU()
	b.ResetTimer()
	for b.Loop() {
		b.StopTimer()
		d := dir()
		fst, err := store.Open(d)
		if err != nil {
			b.Fatal(err)
		}
		f, _ := transfer.New(c, fst, nil, transfer.DefaultConfig(), quiet)
		_ = f.Start(context.Background())
		b.StartTimer()
		if err := f.Fetch(context.Background(), root, a.ID()); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		f.Close()
		os.RemoveAll(d)
		b.StartTimer()
	}
	cpu.report(b)
}

// BenchmarkP8Ratio is P8 as one figure: each iteration moves benchBytes
// over a raw stream and then fetches a fresh benchBytes artifact by CID, on
// the same two hosts and connection, so both see the same load from other
// work on the machine. It reports each one's throughput and the ratio of
// the fetch's to the raw stream's (the goal is ≥ 80 %).
func BenchmarkP8Ratio(b *testing.B) {
	a, c := noiseHost(b), noiseHost(b)
	dir := shmDir(b)
	serveRaw(a)
	pst, err := store.Open(dir())
	if err != nil {
		b.Fatal(err)
	}
	root, err := pst.PutBytes(randBytes(benchBytes))
	if err != nil {
		b.Fatal(err)
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	prov, _ := transfer.New(a, pst, nil, transfer.DefaultConfig(), quiet)
	_ = prov.Start(context.Background())
	b.Cleanup(func() { prov.Close() })
	if err := c.Connect(context.Background(), peer.AddrInfo{ID: a.ID(), Addrs: a.Addrs()}); err != nil {
		b.Fatal(err)
	}
	var raw, fetch time.Duration
	for b.Loop() {
		b.StopTimer()
		d := dir()
		fst, err := store.Open(d)
		if err != nil {
			b.Fatal(err)
		}
		f, _ := transfer.New(c, fst, nil, transfer.DefaultConfig(), quiet)
		_ = f.Start(context.Background())
		b.StartTimer()

		t0 := time.Now()
		s, err := c.NewStream(context.Background(), a.ID(), "/bench/raw")
		if err != nil {
			b.Fatal(err)
		}
		if n, err := io.Copy(io.Discard, s); err != nil || n != benchBytes {
			b.Fatalf("read %d bytes: %v", n, err)
		}
		s.Close()
		t1 := time.Now()
		if err := f.Fetch(context.Background(), root, a.ID()); err != nil {
			b.Fatal(err)
		}
		t2 := time.Now()
		raw += t1.Sub(t0)
		fetch += t2.Sub(t1)

		b.StopTimer()
		f.Close()
		os.RemoveAll(d)
		b.StartTimer()
	}
	mbps := func(d time.Duration) float64 { return float64(benchBytes) * float64(b.N) / d.Seconds() / 1e6 }
	b.ReportMetric(mbps(raw), "raw-MB/s")
	b.ReportMetric(mbps(fetch), "fetch-MB/s")
	b.ReportMetric(100*raw.Seconds()/fetch.Seconds(), "fetch/raw-%")
}

// cpuMeter reports the process's CPU time per operation (both ends of the
// transfer run in this process): less noisy than throughput on a shared
// machine. It includes the untimed setup of each iteration, which is small.
type cpuMeter struct{ start time.Duration }

func processCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func startCPU() cpuMeter { return cpuMeter{processCPU()} }

func (m cpuMeter) report(b *testing.B) {
	b.ReportMetric(float64(processCPU()-m.start)/float64(time.Millisecond)/float64(b.N), "cpu-ms/op")
}

// BenchmarkP8Ceiling measures, in the same run, what bounds P8 on this
// machine when both ends share its cores: the raw stream's time and CPU,
// plus the two things a verified fetch must do on top of it for every
// byte, each alone: hash it (sha256x16 over 16 MiB arenas, as the fetcher
// does), write it into fresh files of the store's file system (1 MiB files
// in 64 KiB writes, as the fetcher does, on /dev/shm) and, on the
// provider's side, read it out of its stored blocks (mapped, copied out in
// 64 KiB pieces as yamux copies a write). floor-cpu-ms is their sum;
// ceiling-% is the best fetch/raw ratio a fetch needing only that CPU
// could reach with every core busy all the time, and
// ceiling-at-raw-busy-% the same at the cores the raw stream keeps busy.
func BenchmarkP8Ceiling(b *testing.B) {
	a, c := noiseHost(b), noiseHost(b)
	dir := shmDir(b)
	serveRaw(a)
	if err := c.Connect(context.Background(), peer.AddrInfo{ID: a.ID(), Addrs: a.Addrs()}); err != nil {
		b.Fatal(err)
	}
	const arenaLen = 16 * store.ChunkSize
	arena := randBytes(arenaLen)
	msgs := make([][]byte, 16)
	for i := range msgs {
		msgs[i] = arena[i*store.ChunkSize : (i+1)*store.ChunkSize]
	}
	sums := make([][32]byte, 16)
	piece := make([]byte, 64<<10)
	var rawWall, rawCPU, hashCPU, writeCPU, readCPU time.Duration
	for b.Loop() {
		t0, c0 := time.Now(), processCPU()
		s, err := c.NewStream(context.Background(), a.ID(), "/bench/raw")
		if err != nil {
			b.Fatal(err)
		}
		if n, err := io.Copy(io.Discard, s); err != nil || n != benchBytes {
			b.Fatalf("read %d bytes: %v", n, err)
		}
		s.Close()
		rawWall += time.Since(t0)
		c1 := processCPU()
		rawCPU += c1 - c0

		for range benchBytes / arenaLen {
			transfer.SumX16(arena, msgs, sums)
		}
		c2 := processCPU()
		hashCPU += c2 - c1

		b.StopTimer()
		d := dir()
		b.StartTimer()
		c3 := processCPU()
		for i := range benchBytes / store.ChunkSize {
			f, err := os.Create(fmt.Sprintf("%s/%d", d, i))
			if err != nil {
				b.Fatal(err)
			}
			chunk := msgs[i%16]
			for off := 0; off < len(chunk); off += 64 << 10 {
				if _, err := f.Write(chunk[off : off+64<<10]); err != nil {
					b.Fatal(err)
				}
			}
			f.Close()
		}
		c4 := processCPU()
		writeCPU += c4 - c3
		for i := range benchBytes / store.ChunkSize {
			readMapped(b, fmt.Sprintf("%s/%d", d, i), piece)
		}
		readCPU += processCPU() - c4
		b.StopTimer()
		os.RemoveAll(d)
		b.StartTimer()
	}
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) / float64(b.N) }
	floor := rawCPU + hashCPU + writeCPU + readCPU
	busy := float64(rawCPU) / float64(rawWall)
	ceiling := func(cores float64) float64 {
		return 100 * min(1, float64(rawWall)*cores/float64(floor))
	}
	b.ReportMetric(ms(rawWall), "raw-ms")
	b.ReportMetric(ms(rawCPU), "raw-cpu-ms")
	b.ReportMetric(ms(hashCPU), "hash-cpu-ms")
	b.ReportMetric(ms(writeCPU), "write-cpu-ms")
	b.ReportMetric(ms(readCPU), "read-cpu-ms")
	b.ReportMetric(ms(floor), "floor-cpu-ms")
	b.ReportMetric(busy, "raw-busy-cores")
	b.ReportMetric(ceiling(float64(runtime.GOMAXPROCS(0))), "ceiling-%")
	b.ReportMetric(ceiling(busy), "ceiling-at-raw-busy-%")
}

// readMapped maps the file at path and copies it out through buf, as a
// provider serves a stored block.
func readMapped(b *testing.B, path string, buf []byte) {
	f, err := os.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		b.Fatal(err)
	}
	m, err := syscall.Mmap(int(f.Fd()), 0, int(st.Size()), syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		b.Fatal(err)
	}
	for off := 0; off < len(m); off += len(buf) {
		copy(buf, m[off:])
	}
	if err := syscall.Munmap(m); err != nil {
		b.Fatal(err)
	}
}
