package ledger

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	voi "github.com/oasisprotocol/curve25519-voi/primitives/ed25519"
)

// Benchmarks for the brief's P3 (ingest vs raw verify), P4 (catch-up vs
// verifying the same signatures), P5 (convergence of 50 replicas after a
// partition heals) and bytes stored per receipt. Sizes:
//
//	WEFT_LEDGER_BENCH_N    receipts per ingest run (default 20000)
//	WEFT_LEDGER_CATCHUP_N  receipts in the catch-up ledger (default 50000; 1000000 for the brief's figure)

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

var (
	genMu    sync.Mutex
	genCache = map[int][]*Entry{}
)

// genReceipts returns n+k entries: k contracts (one per provider) then n
// receipts spread over the k providers' logs, in log order. Cached per n.
func genReceipts(tb testing.TB, n int) []*Entry {
	genMu.Lock()
	defer genMu.Unlock()
	if es, ok := genCache[n]; ok {
		return es
	}
	const k = 16
	per := (n + k - 1) / k
	chunks := make([][]*Entry, k)
	var wg sync.WaitGroup
	sem := make(chan struct{}, runtime.GOMAXPROCS(0))
	for p := 0; p < k; p++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			m := newMarket(tb, byte(2*p+1))
			m.c.InstanceID = fmt.Sprintf("bench-%d", p)
			out := []*Entry{m.ce}
			cnt := min(per, n-p*per)
			for i := 0; i < cnt; i++ {
				out = append(out, m.receipt(tb, Usage{CPUMicros: uint64(1000 + i%5000), MemByteSeconds: 30 << 30, MemPeakBytes: 512 << 20, NetBytes: uint64(i % 100000)}))
			}
			chunks[p] = out
		}()
	}
	wg.Wait()
	var es []*Entry
	for _, c := range chunks {
		es = append(es, c...)
	}
	genCache[n] = es
	return es
}

// rawVerifyRate verifies every entry's signature with crypto/ed25519 on the
// same number of goroutines as ingest, and returns signatures per second.
func rawVerifyRate(b *testing.B, es []*Entry) time.Duration {
	d, _ := rawVerify(b, es)
	return d
}

// rawVerify returns the wall-clock and CPU time of verifying es.
func rawVerify(b *testing.B, es []*Entry) (wall, cpu time.Duration) {
	type job struct {
		pub      ed25519.PublicKey
		msg, sig []byte
	}
	jobs := make([]job, len(es))
	for i, e := range es {
		pub, _ := pubKeyOf(e.Author)
		msg, _ := e.unsignedBytes()
		jobs[i] = job{pub, append([]byte(EntryDomain), msg...), e.Sig}
	}
	workers := runtime.GOMAXPROCS(0)
	cpu0 := cpuTime()
	start := time.Now()
	var wg sync.WaitGroup
	chunk := (len(jobs) + workers - 1) / workers
	for w := 0; w < workers; w++ {
		lo, hi := w*chunk, min((w+1)*chunk, len(jobs))
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, j := range jobs[lo:hi] {
				if !ed25519.Verify(j.pub, j.msg, j.sig) {
					panic("bad signature in benchmark data")
				}
			}
		}()
	}
	wg.Wait()
	return time.Since(start), cpuTime() - cpu0
}

// batchVerify returns the wall-clock and CPU time of verifying es's
// signatures with the verifier the ledger uses, and nothing else: ZIP-215
// batches of MaxBatch (the size of a sync frame) through curve25519-voi,
// every author's key expanded beforehand, batches spread over GOMAXPROCS
// goroutines. This is the fastest this machine verifies these signatures,
// the strict baseline for P3 and P4.
func batchVerify(b *testing.B, es []*Entry) (wall, cpu time.Duration) {
	keys := map[string]*voi.ExpandedPublicKey{}
	msgs := make([][]byte, len(es))
	for i, e := range es {
		if keys[string(e.Author)] == nil {
			pub, _ := pubKeyOf(e.Author)
			k, err := voi.NewExpandedPublicKey(voi.PublicKey(pub))
			if err != nil {
				b.Fatal(err)
			}
			keys[string(e.Author)] = k
		}
		msgs[i], _ = e.signedMessage()
	}
	batches := make(chan [2]int, len(es)/MaxBatch+1)
	for lo := 0; lo < len(es); lo += MaxBatch {
		batches <- [2]int{lo, min(lo+MaxBatch, len(es))}
	}
	close(batches)
	cpu0 := cpuTime()
	start := time.Now()
	var wg sync.WaitGroup
	for w := 0; w < runtime.GOMAXPROCS(0); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := range batches {
				bv := batchVerifiers.Get().(*voi.BatchVerifier).Reset()
				for i := r[0]; i < r[1]; i++ {
					bv.AddExpandedWithOptions(keys[string(es[i].Author)], msgs[i], es[i].Sig, verifyOpts)
				}
				if ok, _ := bv.Verify(nil); !ok {
					panic("bad signature in benchmark data")
				}
				batchVerifiers.Put(bv.Reset())
			}
		}()
	}
	wg.Wait()
	return time.Since(start), cpuTime() - cpu0
}

// BenchmarkVerifyRaw is P3's baseline: raw Ed25519 verifications per second.
func BenchmarkVerifyRaw(b *testing.B) {
	es := genReceipts(b, envInt("WEFT_LEDGER_BENCH_N", 20000))
	b.ResetTimer()
	var total time.Duration
	for i := 0; i < b.N; i++ {
		total += rawVerifyRate(b, es)
	}
	b.ReportMetric(float64(len(es)*b.N)/total.Seconds(), "verifies/s")
	var batch time.Duration
	for i := 0; i < b.N; i++ {
		w, _ := batchVerify(b, es)
		batch += w
	}
	b.ReportMetric(float64(len(es)*b.N)/batch.Seconds(), "batch-verifies/s")
}

// BenchmarkIngest is P3: receipts decoded, verified, stored durably in bbolt
// and merged, per second, arriving in batches of MaxBatch through
// IngestStream (as anti-entropy delivers them). Also reports bytes stored
// per receipt.
func BenchmarkIngest(b *testing.B) {
	es := genReceipts(b, envInt("WEFT_LEDGER_BENCH_N", 20000))
	raws := rawsOf(es)
	b.ResetTimer()
	var total, verify, batch, cpuIngest, cpuVerify, cpuBatch time.Duration
	var size int64
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		w, c := rawVerify(b, es) // same-run baselines, adjacent in time
		verify, cpuVerify = verify+w, cpuVerify+c
		w, c = batchVerify(b, es)
		batch, cpuBatch = batch+w, cpuBatch+c
		dir := b.TempDir()
		l, err := Open(Config{Path: filepath.Join(dir, "l.db")})
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		cpu0 := cpuTime()
		start := time.Now()
		in := make(chan [][]byte, 2)
		go func() {
			for off := 0; off < len(raws); off += MaxBatch {
				in <- raws[off:min(off+MaxBatch, len(raws))]
			}
			close(in)
		}()
		if _, err := l.IngestStream(context.Background(), in); err != nil {
			b.Fatal(err)
		}
		total += time.Since(start)
		cpuIngest += cpuTime() - cpu0
		b.StopTimer()
		if l.Len() != len(es) {
			b.Fatalf("ingested %d of %d", l.Len(), len(es))
		}
		size = l.StoredBytes()
		l.Close()
		b.StartTimer()
	}
	b.ReportMetric(float64(len(es)*b.N)/total.Seconds(), "receipts/s")
	b.ReportMetric(float64(len(es)*b.N)/verify.Seconds(), "verifies/s")
	b.ReportMetric(float64(len(es)*b.N)/batch.Seconds(), "batch-verifies/s")
	b.ReportMetric(verify.Seconds()/total.Seconds(), "ingest/verify")
	b.ReportMetric(batch.Seconds()/total.Seconds(), "ingest/batch-verify")
	if cpuIngest > 0 {
		// Rate per CPU-second: insensitive to other load on a shared machine.
		b.ReportMetric(cpuVerify.Seconds()/cpuIngest.Seconds(), "ingest/verify-cpu")
		b.ReportMetric(cpuBatch.Seconds()/cpuIngest.Seconds(), "ingest/batch-verify-cpu")
	}
	b.ReportMetric(float64(size)/float64(len(es)), "bytes/receipt")
	var entryBytes int
	for _, r := range raws {
		entryBytes += len(r)
	}
	b.ReportMetric(float64(entryBytes)/float64(len(es)), "entry-bytes/receipt")
}

// BenchmarkCatchUpVerify is P4's baseline: the time to verify the catch-up
// ledger's signatures.
func BenchmarkCatchUpVerify(b *testing.B) {
	es := genReceipts(b, envInt("WEFT_LEDGER_CATCHUP_N", 50000))
	b.ResetTimer()
	var total time.Duration
	for i := 0; i < b.N; i++ {
		total += rawVerifyRate(b, es)
	}
	b.ReportMetric(total.Seconds()/float64(b.N), "s/verify")
}

// BenchmarkCatchUp is P4: a fresh replica with a bbolt file catches up a
// whole ledger from one peer over the sync protocol (entries framed,
// decoded, verified, stored and merged).
func BenchmarkCatchUp(b *testing.B) {
	es := genReceipts(b, envInt("WEFT_LEDGER_CATCHUP_N", 50000))
	src, err := Open(Config{})
	if err != nil {
		b.Fatal(err)
	}
	defer src.Close()
	if _, err := src.AddVerified(context.Background(), es); err != nil {
		b.Fatal(err)
	}
	src.Root()
	b.ResetTimer()
	var total, verify, batch, cpuCatch, cpuVerify, cpuBatch time.Duration
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		w, c := rawVerify(b, es) // same-run baselines, adjacent in time
		verify, cpuVerify = verify+w, cpuVerify+c
		w, c = batchVerify(b, es)
		batch, cpuBatch = batch+w, cpuBatch+c
		dst, err := Open(Config{Path: filepath.Join(b.TempDir(), "l.db")})
		if err != nil {
			b.Fatal(err)
		}
		c1, c2 := net.Pipe()
		go func() { _, _ = src.ServeSync(context.Background(), c2); c2.Close() }()
		b.StartTimer()
		cpu0 := cpuTime()
		start := time.Now()
		st, err := dst.Sync(context.Background(), c1)
		if err == nil && !bytes.Equal(dst.Root(), src.Root()) {
			err = fmt.Errorf("roots differ after catch-up (%+v)", st)
		}
		total += time.Since(start)
		cpuCatch += cpuTime() - cpu0
		b.StopTimer()
		c1.Close()
		if err != nil {
			b.Fatal(err)
		}
		dst.Close()
		b.StartTimer()
	}
	b.ReportMetric(total.Seconds()/float64(b.N), "s/catchup")
	b.ReportMetric(verify.Seconds()/float64(b.N), "s/verify")
	b.ReportMetric(batch.Seconds()/float64(b.N), "s/batch-verify")
	b.ReportMetric(total.Seconds()/verify.Seconds(), "catchup/verify")
	b.ReportMetric(total.Seconds()/batch.Seconds(), "catchup/batch-verify")
	if cpuCatch > 0 {
		// CPU-seconds ratio (includes the serving side, which shares the process).
		b.ReportMetric(cpuCatch.Seconds()/cpuVerify.Seconds(), "catchup/verify-cpu")
		b.ReportMetric(cpuCatch.Seconds()/cpuBatch.Seconds(), "catchup/batch-verify-cpu")
	}
	b.ReportMetric(float64(len(es)*b.N)/total.Seconds(), "receipts/s")
}

// BenchmarkConverge50 is P5: 50 replicas split in two partitions each write
// entries (gossip inside each side); the partition heals (each replica
// syncs with one replica of the other side, as on a libp2p connect, then
// anti-entropy at the default interval); the figure is the time until every
// replica has the same root.
func BenchmarkConverge50(b *testing.B) {
	var total, verify time.Duration
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		ctx, cancel := context.WithCancel(context.Background())
		n := buildSimNet(b, ctx, 50)
		n.setPartitioned(true)
		for round := 0; round < 4; round++ {
			for _, id := range n.order {
				if _, err := n.nodes[id].Append(ctx, Grant{To: id, Amount: uint64(round)}); err != nil {
					b.Fatal(err)
				}
			}
		}
		n.wg.Wait()
		n.startSync(DefaultSyncConfig().Interval)
		waitFor(b, time.Minute, "sides converge", func() bool { return n.groupConverged(0) && n.groupConverged(1) })
		// Same-run baseline: verifying, on the same cores, as many
		// signatures as the replicas lack in total (the least work healing needs).
		missing := 0
		for _, id := range n.order {
			missing += n.nodes[n.order[0]].Len() + n.nodes[n.order[1]].Len() - n.nodes[id].Len()
		}
		verify += rawVerifyRate(b, genReceipts(b, missing))
		b.StartTimer()
		start := time.Now()
		n.heal()
		for !n.converged() {
			time.Sleep(time.Millisecond)
		}
		total += time.Since(start)
		b.StopTimer()
		cancel()
		n.close()
		b.StartTimer()
	}
	b.ReportMetric(float64(total.Milliseconds())/float64(b.N), "ms/converge")
	b.ReportMetric(float64(verify.Milliseconds())/float64(b.N), "ms/verify-missing")
	b.ReportMetric(total.Seconds()/verify.Seconds(), "converge/verify")
}
