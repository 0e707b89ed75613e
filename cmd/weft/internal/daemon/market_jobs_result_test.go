package daemon

import (
	"context"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/multiformats/go-multihash"

	"github.com/weftgrid/weft/partition"
	"github.com/weftgrid/weft/recipes/store"
	"github.com/weftgrid/weft/scheduler"
)

// A completed batch job whose output cannot be stored (here a FIFO in
// out/) must be reported failed with the reason, not pending "storing the
// result" forever (weft job run --wait would wait out its whole timeout).
func TestRunnerReportsUnstorableResult(t *testing.T) {
	st, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	out := filepath.Join(t.TempDir(), "out")
	if err := syscall.Mkdir(out, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(out, "pipe"), 0o600); err != nil {
		t.Fatal(err)
	}
	parts := fakeParts{st: map[string]partition.InstanceStatus{
		"job": {ID: "job", Phase: partition.PhaseCompleted, Batch: true, State: partition.StateStarted, ResultDir: out,
			Error: "store result: store: put dir: store: pipe: only regular files, directories and symbolic links can be stored"},
	}}
	r := newPartitionRunner(parts, marketContent{st: st}, t.TempDir())
	rs, ok := r.Status("job")
	if !ok {
		t.Fatal("job not reported")
	}
	if rs.State != scheduler.StateFailed || rs.Reason == "" {
		t.Fatalf("unstorable result reported as %v (%q), want failed with the reason", rs.State, rs.Reason)
	}
}

// Two of this node's jobs that produce the same result tree (same CID)
// must both be released once the result is held: the second one's
// partition on its host must not stay taken forever.
func TestPrefetchReleasesEveryJobWithTheSameResult(t *testing.T) {
	mh, err := multihash.Sum([]byte("result"), multihash.SHA2_256, -1)
	if err != nil {
		t.Fatal(err)
	}
	res := cid.NewCidV1(cid.Raw, mh).String()
	p := newMarketPrefetch(func(context.Context, cid.Cid, ...peer.ID) error { return nil })
	var mu sync.Mutex
	released := map[string]bool{}
	p.jobDone = func(v scheduler.InstanceView) { mu.Lock(); released[v.Name] = true; mu.Unlock() }
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go p.run(ctx)
	for _, name := range []string{"job-a", "job-b"} {
		p.observe(scheduler.Event{Kind: scheduler.EventStatus, Instance: scheduler.InstanceView{
			Name: name, InstanceID: scheduler.InstanceID("id-" + name), Mine: true, Batch: true,
			State: scheduler.StateDone, Result: res}})
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		n := len(released)
		mu.Unlock()
		if n == 2 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("released %v, want job-a and job-b", released)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
