package transfer

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
)

// A fetch runs in two phases. First the DAG's inner blocks (the recipe,
// manifests: small) come level by level from one provider, which tells
// the fetcher every chunk it needs. Then the chunks come from up to
// Config.Parallel providers at once: the first provider takes all of them
// in one request (one pipelined stream, as fast as one provider goes), and
// each provider that joins takes the second half of the largest share
// still to come; the provider that gave it up is stopped when its stream
// reaches that half. A provider that fails leaves what it did not deliver
// to the others (or to the next provider found). Blocks that arrived
// verified are kept whatever happens after them.

// candidate is a peer to ask for the content; fallback marks connected
// peers asked only because no provider is known.
type candidate struct {
	id       peer.ID
	fallback bool
}

// providers streams the peers a fetch of c may ask, each once: the hints,
// then the routing's providers, then up to AskConnected connected peers.
// It stops when ctx ends.
func (s *Service) providers(ctx context.Context, c cid.Cid, hints []peer.ID) <-chan candidate {
	out := make(chan candidate)
	go func() {
		defer close(out)
		seen := map[peer.ID]bool{s.host.ID(): true}
		send := func(p peer.ID, fallback bool) bool {
			if seen[p] {
				return true
			}
			seen[p] = true
			select {
			case out <- candidate{p, fallback}:
				return true
			case <-ctx.Done():
				return false
			}
		}
		for _, p := range hints {
			if !send(p, false) {
				return
			}
		}
		if s.routing != nil {
			for ai := range s.routing.FindProvidersAsync(ctx, c, s.cfg.MaxProviders) {
				if len(ai.Addrs) > 0 && !seen[ai.ID] {
					s.host.Peerstore().AddAddrs(ai.ID, ai.Addrs, 10*time.Minute)
				}
				if !send(ai.ID, false) {
					return
				}
			}
		}
		asked := 0
		for _, p := range s.host.Network().Peers() {
			if asked >= s.cfg.AskConnected {
				return
			}
			if !seen[p] {
				asked++
			}
			if !send(p, true) {
				return
			}
		}
	}()
	return out
}

// fetchRun collects the failed attempts of one fetch.
type fetchRun struct {
	s    *Service
	root cid.Cid
	errs []error
}

func (f *fetchRun) failed(p peer.ID, err error) {
	f.s.failed.Add(1)
	f.s.log.Info("fetch attempt failed; trying another provider", "cid", f.root, "peer", p, "err", err)
	f.errs = append(f.errs, fmt.Errorf("peer %s: %w", p, err))
}

func (f *fetchRun) noProvider(ctx context.Context) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if len(f.errs) == 0 {
		return fmt.Errorf("%w: %s: no peer provides it", ErrNoProvider, f.root)
	}
	return fmt.Errorf("%w: %s: %w", ErrNoProvider, f.root, errors.Join(f.errs...))
}

func (s *Service) fetch(ctx context.Context, c cid.Cid, hints []peer.ID) error {
	s.fetches.Add(1)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	src := s.providers(ctx, c, hints)
	f := &fetchRun{s: s, root: c}
	for cand := range src {
		if err := s.fetchInner(ctx, cand.id, c); err != nil {
			f.failed(cand.id, err)
			if ctx.Err() != nil {
				return ctx.Err()
			}
			continue
		}
		return f.chunks(ctx, cand.id, src)
	}
	return f.noProvider(ctx)
}

// fetchInner gets from p the blocks of root's DAG that are not raw chunks,
// level by level, until only chunks are missing.
func (s *Service) fetchInner(ctx context.Context, p peer.ID, root cid.Cid) error {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.AttemptTimeout)
	defer cancel()
	for {
		miss, err := s.store.Missing(root)
		if err != nil {
			return err
		}
		inner := miss[:0]
		for _, m := range miss {
			if m.Prefix().Codec != cid.Raw {
				inner = append(inner, m)
			}
		}
		if len(inner) == 0 {
			return nil
		}
		got, err := s.request(ctx, p, inner[:min(len(inner), MaxWant)], false, nil)
		if serr := s.store.Sync(); serr != nil && err == nil {
			err = serr
		}
		if err != nil {
			return err
		}
		if got == 0 {
			return ErrIncomplete
		}
	}
}

// chunks gets the missing chunks of the root from first and from the
// providers src yields next, up to Parallel at once.
func (f *fetchRun) chunks(ctx context.Context, first peer.ID, src <-chan candidate) error {
	s := f.s
	miss, err := s.store.Missing(f.root)
	if err != nil || len(miss) == 0 {
		return err
	}
	sw := newSwarm(miss)
	type done struct {
		p   peer.ID
		err error
	}
	results := make(chan done, s.cfg.Parallel)
	active := 0
	defer func() {
		for ; active > 0; active-- {
			<-results
		}
	}()
	var idle []peer.ID // providers that delivered their shares
	// Connected peers asked only because they are connected: they never
	// join providers at work, but take over when every provider failed.
	var spare []peer.ID
	// start gives p a share (taken here, so that providers get them in
	// the order they come) and runs it; without a share p waits in idle.
	start := func(p peer.ID) {
		sp := sw.take()
		if sp == nil {
			idle = append(idle, p)
			return
		}
		active++
		go func() { results <- done{p, s.work(ctx, p, sw, sp)} }()
	}
	start(first)
	for {
		var more <-chan candidate
		if active < s.cfg.Parallel && sw.hasWork() {
			if len(idle) > 0 {
				// A provider that failed left chunks, or a share is
				// worth splitting: a proven provider takes it before
				// any new one is tried.
				p := idle[len(idle)-1]
				idle = idle[:len(idle)-1]
				start(p)
				continue
			}
			if active == 0 && len(spare) > 0 {
				p := spare[0]
				spare = spare[1:]
				start(p)
				continue
			}
			more = src
		}
		if active == 0 && more == nil {
			left, err := s.store.Missing(f.root)
			if err == nil && len(left) == 0 {
				return nil
			}
			if err != nil {
				return err
			}
			return f.noProvider(ctx)
		}
		select {
		case cand, ok := <-more:
			if !ok {
				src = nil
				continue
			}
			if cand.fallback && active > 0 {
				// Connected peers are asked only when no provider is
				// at work: this one waits for every provider to fail.
				spare = append(spare, cand.id)
				continue
			}
			start(cand.id)
		case r := <-results:
			active--
			if r.err != nil {
				f.failed(r.p, r.err)
			} else {
				idle = append(idle, r.p)
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
		}
	}
}

// work fetches sp from p, then more shares until none is left to take.
func (s *Service) work(ctx context.Context, p peer.ID, sw *swarm, sp *share) error {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.AttemptTimeout)
	defer cancel()
	for sp != nil {
		if err := s.workShare(ctx, p, sw, sp); err != nil {
			sw.abandon(sp)
			return err
		}
		sw.finish(sp)
		sp = sw.take()
	}
	return nil
}

// workShare requests the chunks of sp that are not stored yet from p until
// there are none (sp may shrink meanwhile).
func (s *Service) workShare(ctx context.Context, p peer.ID, sw *swarm, sp *share) error {
	stop := func(c cid.Cid) bool { return sw.reached(sp, c) }
	for progress := true; ; {
		want := sw.missing(sp, s.store.HasBlock)
		if len(want) == 0 {
			return nil
		}
		if !progress {
			return ErrIncomplete
		}
		got, err := s.request(ctx, p, want[:min(len(want), MaxWant)], false, stop)
		if serr := s.store.Sync(); serr != nil && err == nil {
			err = serr
		}
		if err != nil {
			return err
		}
		progress = got > 0
	}
}

// share is a run of the swarm's chunks one provider is to send:
// chunks[lo:end]; next is the first one whose frame has not begun. Another
// provider may take [mid:end] from it at any time (end becomes mid).
type share struct {
	lo, next, end int
}

// swarm hands out the chunks of one fetch to its providers.
type swarm struct {
	chunks []cid.Cid
	index  map[cid.Cid]int

	mu      sync.Mutex
	active  map[*share]bool
	orphans []*share // to take: left by failed providers (and at first, all)
}

func newSwarm(chunks []cid.Cid) *swarm {
	sw := &swarm{chunks: chunks, index: make(map[cid.Cid]int, len(chunks)), active: map[*share]bool{}}
	for i, c := range chunks {
		sw.index[c] = i
	}
	sw.orphans = []*share{{lo: 0, next: 0, end: len(chunks)}}
	return sw
}

// take returns a share for a provider: one a failed provider left, else
// the second half of the largest share still to come (at least two
// chunks), else nil.
func (sw *swarm) take() *share {
	sw.mu.Lock()
	defer sw.mu.Unlock()
	if len(sw.orphans) > 0 {
		sp := sw.orphans[0]
		sw.orphans = sw.orphans[1:]
		sw.active[sp] = true
		return sp
	}
	var victim *share
	most := 1
	for sp := range sw.active {
		if left := sp.end - sp.next; left > most {
			victim, most = sp, left
		}
	}
	if victim == nil {
		return nil
	}
	mid := victim.next + (most+1)/2
	sp := &share{lo: mid, next: mid, end: victim.end}
	victim.end = mid
	sw.active[sp] = true
	return sp
}

// hasWork says whether a provider that joins now would get a share.
func (sw *swarm) hasWork() bool {
	sw.mu.Lock()
	defer sw.mu.Unlock()
	if len(sw.orphans) > 0 {
		return true
	}
	for sp := range sw.active {
		if sp.end-sp.next > 1 {
			return true
		}
	}
	return false
}

// reached is called before the frame of c begins on sp's stream: it says
// whether c lies past sp's end (taken by another provider), else notes
// that c has begun.
func (sw *swarm) reached(sp *share, c cid.Cid) bool {
	i, ok := sw.index[c]
	if !ok {
		return false // not a chunk of this fetch: the request rejects it
	}
	sw.mu.Lock()
	defer sw.mu.Unlock()
	if i >= sp.end {
		return true
	}
	sp.next = max(sp.next, i+1)
	return false
}

// missing lists sp's chunks that has does not hold.
func (sw *swarm) missing(sp *share, has func(cid.Cid) bool) []cid.Cid {
	sw.mu.Lock()
	lo, end := sp.lo, sp.end
	sw.mu.Unlock()
	var out []cid.Cid
	for _, c := range sw.chunks[lo:end] {
		if !has(c) {
			out = append(out, c)
		}
	}
	return out
}

// finish retires a share that was delivered whole.
func (sw *swarm) finish(sp *share) {
	sw.mu.Lock()
	defer sw.mu.Unlock()
	delete(sw.active, sp)
}

// abandon gives sp's chunks back for another provider to take (those
// already stored are skipped then).
func (sw *swarm) abandon(sp *share) {
	sw.mu.Lock()
	defer sw.mu.Unlock()
	delete(sw.active, sp)
	if sp.end > sp.lo {
		sw.orphans = append(sw.orphans, &share{lo: sp.lo, next: sp.lo, end: sp.end})
	}
}
