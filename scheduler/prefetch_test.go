package scheduler

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/multiformats/go-multihash"
)

// Two of this node's jobs that produce the same result tree (same CID)
// must both be released once the result is held: the second one's
// partition on its host must not stay taken forever.
func TestPrefetchReleasesEveryJobWithTheSameResult(t *testing.T) {
	mh, err := multihash.Sum([]byte("result"), multihash.SHA2_256, -1)
	if err != nil {
		t.Fatal(err)
	}
	res := cid.NewCidV1(cid.Raw, mh).String()
	p := NewPrefetch(func(context.Context, cid.Cid, ...peer.ID) error { return nil })
	var mu sync.Mutex
	released := map[string]bool{}
	p.JobDone = func(v InstanceView) { mu.Lock(); released[v.Name] = true; mu.Unlock() }
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go p.Run(ctx)
	for _, name := range []string{"job-a", "job-b"} {
		p.Observe(Event{Kind: EventStatus, Instance: InstanceView{
			Name: name, InstanceID: InstanceID("id-" + name), Mine: true, Batch: true,
			State: StateDone, Result: res}})
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
