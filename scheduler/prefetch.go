package scheduler

import (
	"context"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
)

// Prefetch keeps content an instance depends on available while its
// requester or host is gone: a guardian fetches (and so provides) the
// recipe of each instance it guards, so that it can be placed again when
// the requester is offline and the host dead; a requester fetches the
// result of each of its batch jobs, so that it outlives the host.
type Prefetch struct {
	fetch func(ctx context.Context, c cid.Cid, hints ...peer.ID) error
	queue chan prefetchItem
	// JobDone, if set, is called (from the prefetch goroutine) once the
	// result of one of this node's batch jobs is held locally.
	JobDone func(v InstanceView)

	mu sync.Mutex
	// done holds what is queued or fetched: a recipe by CID, a job's
	// result by CID and instance (jobs with the same result are each
	// released).
	done map[string]bool
}

type prefetchItem struct {
	key   string
	c     cid.Cid
	hints []peer.ID
	job   *InstanceView
}

// prefetchTimeout bounds one prefetch.
const prefetchTimeout = 2 * time.Minute

// NewPrefetch returns a Prefetch that makes content local with fetch
// (hinted peers first); Run it, and pass its Observe to Market.Observe.
func NewPrefetch(fetch func(ctx context.Context, c cid.Cid, hints ...peer.ID) error) *Prefetch {
	return &Prefetch{fetch: fetch, queue: make(chan prefetchItem, 256), done: map[string]bool{}}
}

// Observe is the market observer (Market.Observe): it runs on the market's loop and never blocks.
func (p *Prefetch) Observe(ev Event) {
	v := ev.Instance
	if v.InstanceID == "" {
		return
	}
	var hints []peer.ID
	for _, s := range []string{v.Node, v.Requester} {
		if id, err := peer.Decode(s); err == nil {
			hints = append(hints, id)
		}
	}
	switch {
	case !v.Mine && v.RecipeCID != "":
		p.add(v.RecipeCID, hints, nil)
	case v.Mine && v.Batch && v.State == StateDone && v.Result != "":
		p.add(v.Result, hints, &v)
	}
}

func (p *Prefetch) add(s string, hints []peer.ID, job *InstanceView) {
	c, err := cid.Decode(s)
	if err != nil {
		return
	}
	key := c.String()
	if job != nil {
		key += " " + string(job.InstanceID)
	}
	p.mu.Lock()
	seen := p.done[key]
	p.done[key] = true
	p.mu.Unlock()
	if seen {
		return
	}
	select {
	case p.queue <- prefetchItem{key, c, hints, job}:
	default:
		p.forget(key) // full: a later event tries again
	}
}

func (p *Prefetch) forget(key string) {
	p.mu.Lock()
	delete(p.done, key)
	p.mu.Unlock()
}

// Run fetches queued content until ctx ends.
func (p *Prefetch) Run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case it := <-p.queue:
			fctx, cancel := context.WithTimeout(ctx, prefetchTimeout)
			err := p.fetch(fctx, it.c, it.hints...)
			cancel()
			switch {
			case err != nil:
				p.forget(it.key)
			case it.job != nil && p.JobDone != nil:
				p.JobDone(*it.job)
			}
		}
	}
}
