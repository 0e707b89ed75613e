package ledger

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/weftgrid/weft/recipes/clock"
)

// Broadcaster publishes a new entry's bytes to the grid (the libp2p adapter
// publishes on the grid's ledger topic).
type Broadcaster interface {
	Broadcast(ctx context.Context, entry []byte) error
}

// Config configures a Ledger.
type Config struct {
	// Path is the bbolt file. Empty keeps the ledger in memory only (tests,
	// simulations and offline audits).
	Path string
	// ReadOnly opens an existing file without writing to it (CLI audits of a
	// stopped node). Append and ingest fail.
	ReadOnly bool
	// Signer signs this node's entries. Nil makes a read-only replica.
	Signer *Signer
	// Log receives structured logs. Default: slog.Default().
	Log *slog.Logger
	// Clock is the ledger's time and its loops' timers and tickers (the
	// biller, anti-entropy, checkpoints). Default: clock.System().
	Clock clock.Clock
	// Now, when set, is the time instead of Clock.Now (tests that fix the
	// time of entries and checks; the loops still wait on Clock).
	Now func() time.Time
	// Workers is how many goroutines verify signatures in parallel during
	// ingest. Default: GOMAXPROCS.
	Workers int
	// Granters are the only authors whose grants count in balances (a
	// private grid's founders and the granters its grid file names, or a
	// public node's configured granters). Empty: no grant counts.
	Granters []peer.ID
	// ContractCheck, when set, verifies that a contract was agreed by its
	// parties (the market's signed award and acceptance in Evidence):
	// contracts failing it are kept (every replica holds the same set) but
	// fence nothing and are reported by the audit. See Set.SetContractCheck.
	ContractCheck func(Contract) error
}

// DefaultConfig returns a Config for a ledger stored at path.
func DefaultConfig(path string) Config {
	return Config{Path: path, Workers: runtime.GOMAXPROCS(0)}
}

func (c *Config) validate() error {
	if c.Workers < 0 {
		return fmt.Errorf("ledger: workers %d < 0", c.Workers)
	}
	return nil
}

// Ledger is a node's replica of the grid ledger: the in-memory Set, backed by
// a bbolt file, with this node's own log appended through Append.
type Ledger struct {
	cfg Config
	log *slog.Logger

	wmu sync.Mutex // serialises own appends (seq assignment) and commits
	mu  sync.Mutex // guards set, cpID and cpOthers
	set *Set
	// cpID is this node's last checkpoint taken by this process, and
	// cpOthers how many entries other than checkpoints were held then.
	cpID     cid.Cid
	cpOthers int
	st       *store

	bmu   sync.RWMutex
	bcast Broadcaster
	subs  map[int]chan *Entry
	nsub  int

	closeOnce sync.Once
	closed    chan struct{}
	wg        sync.WaitGroup
	syncReq   chan peer.ID
	lastSync  atomic.Int64 // Unix ns: start of the last completed anti-entropy exchange
	alone     atomic.Int64 // Unix ns: last anti-entropy round that found no peer, while peered is false
	peered    atomic.Bool  // an anti-entropy exchange was started with some peer
}

// Open loads (or creates) the ledger at cfg.Path.
func Open(cfg Config) (*Ledger, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if cfg.Workers == 0 {
		cfg.Workers = runtime.GOMAXPROCS(0)
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.System()
	}
	if cfg.Now == nil {
		cfg.Now = cfg.Clock.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	l := &Ledger{cfg: cfg, log: cfg.Log, set: NewSet(), subs: map[int]chan *Entry{}, closed: make(chan struct{}), syncReq: make(chan peer.ID, 64)}
	l.set.SetContractCheck(cfg.ContractCheck)
	if cfg.Path != "" {
		st, err := openStore(cfg.Path, cfg.ReadOnly)
		if err != nil {
			return nil, err
		}
		if err := st.load(func(e *Entry) error { l.set.Add(e); return nil }); err != nil {
			st.close()
			return nil, err
		}
		l.st = st
	}
	return l, nil
}

// Close stops background work and closes the file. Idempotent.
func (l *Ledger) Close() error {
	var err error
	l.closeOnce.Do(func() {
		close(l.closed)
		l.wg.Wait()
		l.wmu.Lock()
		defer l.wmu.Unlock()
		err = l.st.close()
	})
	return err
}

// ID is the peer ID this ledger appends as ("" for a read-only replica).
func (l *Ledger) ID() peer.ID {
	if l.cfg.Signer == nil {
		return ""
	}
	return l.cfg.Signer.ID()
}

// SetBroadcaster sets where new own entries are published (nil: nowhere).
func (l *Ledger) SetBroadcaster(b Broadcaster) {
	l.bmu.Lock()
	l.bcast = b
	l.bmu.Unlock()
}

// Subscribe returns a channel receiving every entry added from now on (own
// and received). Slow readers miss entries rather than block the ledger.
// Call cancel to stop.
func (l *Ledger) Subscribe(buf int) (<-chan *Entry, func()) {
	ch := make(chan *Entry, buf)
	l.bmu.Lock()
	id := l.nsub
	l.nsub++
	l.subs[id] = ch
	l.bmu.Unlock()
	return ch, func() {
		l.bmu.Lock()
		if _, ok := l.subs[id]; ok {
			delete(l.subs, id)
			close(ch)
		}
		l.bmu.Unlock()
	}
}

func (l *Ledger) notify(es []*Entry) {
	l.bmu.RLock()
	defer l.bmu.RUnlock()
	for _, ch := range l.subs {
		for _, e := range es {
			select {
			case ch <- e:
			default:
			}
		}
	}
}

func (l *Ledger) isClosed() bool {
	select {
	case <-l.closed:
		return true
	default:
		return false
	}
}

// Append signs body (Contract, Receipt, Ack, Dispute, Grant or Checkpoint)
// as the next entry of this node's log, stores it durably (fsync) and
// publishes it. When Append returns without error the entry survives any
// crash.
func (l *Ledger) Append(ctx context.Context, body any) (*Entry, error) {
	return l.appendWith(ctx, func() (any, bool) { return body, true })
}

// appendWith is Append of the body bodyFn returns, called with this node's
// log locked: no entry of its own can come between what bodyFn reads and
// the entry (a checkpoint counts every entry of its author before it). ok
// false appends nothing and returns nil, nil.
func (l *Ledger) appendWith(ctx context.Context, bodyFn func() (body any, ok bool)) (*Entry, error) {
	if l.cfg.Signer == nil || l.cfg.ReadOnly {
		return nil, fmt.Errorf("%w: read-only ledger", ErrInvalid)
	}
	if l.isClosed() {
		return nil, ErrClosed
	}
	l.wmu.Lock()
	body, ok := bodyFn()
	if !ok {
		l.wmu.Unlock()
		return nil, nil
	}
	l.mu.Lock()
	tip := l.set.Tip(l.cfg.Signer.ID())
	l.mu.Unlock()
	seq, prev := uint64(1), cid.Undef
	if tip != nil {
		seq, prev = tip.Seq+1, tip.id
	}
	e, err := NewEntry(seq, prev, l.cfg.Now(), body)
	if err == nil {
		err = l.cfg.Signer.Sign(e)
	}
	if err == nil && l.st != nil {
		err = l.st.put([]*Entry{e})
	}
	if err != nil {
		l.wmu.Unlock()
		return nil, err
	}
	l.mu.Lock()
	l.set.Add(e)
	l.mu.Unlock()
	l.wmu.Unlock()
	l.notify([]*Entry{e})
	l.bmu.RLock()
	b := l.bcast
	l.bmu.RUnlock()
	if b != nil {
		if err := b.Broadcast(ctx, e.raw); err != nil {
			l.log.Warn("ledger: broadcast failed; anti-entropy will carry the entry", "cid", e.id, "err", err)
		}
	}
	return e, nil
}

// AppendContract appends a contract (see Append).
func (l *Ledger) AppendContract(ctx context.Context, c Contract) (*Entry, error) {
	return l.Append(ctx, c)
}

// unheld drops the raw entries already held (a hash is much cheaper than a
// signature check, and anti-entropy and gossip often deliver both). It
// returns the others with their CIDs.
func (l *Ledger) unheld(raws [][]byte) ([][]byte, []cid.Cid) {
	ids := make([]cid.Cid, len(raws))
	for i, b := range raws {
		ids[i] = CIDOf(b)
	}
	out, outIDs := raws[:0:0], ids[:0]
	l.mu.Lock()
	for i, b := range raws {
		if !l.set.Has(ids[i]) {
			out = append(out, b)
			outIDs = append(outIDs, ids[i])
		}
	}
	l.mu.Unlock()
	return out, outIDs
}

// Has reports whether the entry with CID c is held.
func (l *Ledger) Has(c cid.Cid) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.set.Has(c)
}

// VerifyAll decodes and verifies raw entries in parallel on cfg.Workers
// goroutines. It returns the good entries (input order) and one error per
// rejected input.
func (l *Ledger) VerifyAll(raws [][]byte) ([]*Entry, []error) {
	return verifyParallel(raws, nil, l.cfg.Workers)
}

// verifyParallel decodes and verifies raws (whose CIDs are ids, or nil to
// compute them) on up to workers goroutines.
func verifyParallel(raws [][]byte, ids []cid.Cid, workers int) ([]*Entry, []error) {
	out := make([]*Entry, len(raws))
	errs := make([]error, len(raws))
	workers = max(1, min(workers, len(raws)/batchMin))
	var wg sync.WaitGroup
	chunk := (len(raws) + workers - 1) / workers
	for w := 0; w < workers; w++ {
		lo, hi := w*chunk, min((w+1)*chunk, len(raws))
		if lo >= hi {
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			var part []cid.Cid
			if ids != nil {
				part = ids[lo:hi]
			}
			decodeVerifyBatch(raws[lo:hi], part, out[lo:hi], errs[lo:hi])
		}()
	}
	wg.Wait()
	good := out[:0]
	var bad []error
	for i, e := range out {
		if errs[i] != nil {
			bad = append(bad, errs[i])
			continue
		}
		good = append(good, e)
	}
	return good, bad
}

// decodeVerifyBatch decodes raws into out (errs gets each refusal) and
// verifies the decoded entries' signatures as one batch.
func decodeVerifyBatch(raws [][]byte, ids []cid.Cid, out []*Entry, errs []error) {
	decoded := make([]*Entry, 0, len(raws))
	at := make([]int, 0, len(raws))
	for i, b := range raws {
		id := cid.Undef
		if ids != nil {
			id = ids[i]
		}
		e, err := decodeAs(b, id)
		if err != nil {
			errs[i] = err
			continue
		}
		decoded = append(decoded, e)
		at = append(at, i)
	}
	for j, err := range verifyEntries(decoded) {
		if err != nil {
			errs[at[j]] = err
			continue
		}
		out[at[j]] = decoded[j]
	}
}

// Ingest verifies raw entries received from peers (in parallel), stores the
// new ones in one transaction (one fsync) and merges them. It returns the
// entries that were new. Rejected inputs give an error wrapping ErrRejected
// (and why), while the good ones are still ingested; any other error is a
// local failure and nothing was ingested.
func (l *Ledger) Ingest(ctx context.Context, raws [][]byte) ([]*Entry, error) {
	fresh, ids := l.unheld(raws)
	good, bad := verifyParallel(fresh, ids, l.cfg.Workers)
	added, err := l.AddVerified(ctx, good)
	if err != nil {
		return nil, err
	}
	if len(bad) > 0 {
		return added, fmt.Errorf("%w (%d of %d): %w", ErrRejected, len(bad), len(raws), errors.Join(bad...))
	}
	return added, nil
}

// IngestStream ingests batches of raw entries from in until it is closed,
// as a pipeline: cfg.Workers goroutines each decode and verify whole
// batches while the commit stage stores what was already verified,
// grouping whatever is ready into one transaction (one fsync). The commit
// stage takes batches in the order they arrived, so that a log streamed in
// order is appended to the store in order (a batch committed ahead of the
// one before it would make every insert of the latter shift the B+tree
// leaf it lands in). Rejected entries are logged and skipped. It returns
// how many entries were new, and the first local (storage) error, after
// which it drains in.
func (l *Ledger) IngestStream(ctx context.Context, in <-chan [][]byte) (int, error) {
	type job struct {
		n    int
		raws [][]byte
	}
	type done struct {
		n  int
		es []*Entry
	}
	workers := max(1, l.cfg.Workers)
	jobs := make(chan job, workers)
	go func() {
		n := 0
		for raws := range in {
			jobs <- job{n, raws}
			n++
		}
		close(jobs)
	}()
	// Each worker verifies whole batches on its own: no barrier between
	// workers, so every core stays busy.
	verified := make(chan done, 2*workers)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				fresh, ids := l.unheld(j.raws)
				good, bad := verifyParallel(fresh, ids, 1)
				if len(bad) > 0 {
					l.log.Debug("ledger: rejected entries", "count", len(bad), "first", bad[0])
				}
				verified <- done{j.n, good}
			}
		}()
	}
	go func() { wg.Wait(); close(verified) }()
	const maxGroup = 16 * MaxBatch
	added := 0
	var firstErr error
	waiting := map[int][]*Entry{} // verified ahead of their turn
	next := 0
	var group []*Entry
	commit := func() {
		if len(group) > 0 && firstErr == nil {
			n, err := l.AddVerified(ctx, group)
			added += len(n)
			if err != nil {
				firstErr = err
			}
		}
		group = nil
	}
	for d := range verified {
		waiting[d.n] = d.es
		// Take whatever else is already verified, then every batch whose
		// turn has come, into one commit.
	more:
		for {
			select {
			case d, ok := <-verified:
				if !ok {
					break more
				}
				waiting[d.n] = d.es
			default:
				break more
			}
		}
		for es, ok := waiting[next]; ok; es, ok = waiting[next] {
			delete(waiting, next)
			next++
			group = append(group, es...)
			if len(group) >= maxGroup {
				commit()
			}
		}
		commit()
	}
	return added, firstErr
}

// AddVerified stores and merges entries whose signatures the caller has
// already verified (e.g. by the gossip validator). It returns those that
// were new. Each call is one durable commit.
func (l *Ledger) AddVerified(ctx context.Context, es []*Entry) ([]*Entry, error) {
	if l.isClosed() {
		return nil, ErrClosed
	}
	if len(es) == 0 {
		return nil, nil
	}
	if l.cfg.ReadOnly {
		return nil, fmt.Errorf("%w: read-only ledger", ErrInvalid)
	}
	l.wmu.Lock()
	defer l.wmu.Unlock()
	l.mu.Lock()
	fresh := make([]*Entry, 0, len(es))
	seen := make(map[cid.Cid]bool, len(es))
	for _, e := range es {
		if !l.set.Has(e.id) && !seen[e.id] {
			seen[e.id] = true
			fresh = append(fresh, e)
		}
	}
	l.mu.Unlock()
	if len(fresh) == 0 {
		return nil, nil
	}
	if l.st != nil {
		if err := l.st.put(fresh); err != nil {
			return nil, err
		}
	}
	var forks [][]*Entry
	l.mu.Lock()
	for _, e := range fresh {
		if _, eq := l.set.Add(e); eq {
			forks = append(forks, l.set.authors[e.Author].bySeq[e.Seq])
		}
	}
	l.mu.Unlock()
	for _, f := range forks {
		l.log.Warn("ledger: equivocation: author signed two entries at one seq", "author", f[0].Author, "seq", f[0].Seq, "cids", len(f))
	}
	l.notify(fresh)
	return fresh, nil
}

// View runs fn with the Set locked. fn must not keep the Set or call other
// Ledger methods.
func (l *Ledger) View(fn func(s *Set)) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fn(l.set)
}

// Len is the number of entries.
func (l *Ledger) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.set.Len()
}

// Get returns the entry with CID c.
func (l *Ledger) Get(c cid.Cid) (*Entry, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.set.Get(c)
}

// Root is the Merkle root over every entry held.
func (l *Ledger) Root() []byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.set.Root()
}

// RootHex is Root in hex.
func (l *Ledger) RootHex() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.set.RootHex()
}

// Heads returns the per-author heads.
func (l *Ledger) Heads() []Head {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.set.Heads()
}

// Audit audits the whole ledger, counting unbilled slices as of the
// ledger's clock.
func (l *Ledger) Audit() Report {
	now := l.cfg.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	return Audit(l.set, AuditOptions{Granters: l.cfg.Granters, Now: now})
}

// Granters returns the authors whose grants count.
func (l *Ledger) Granters() []peer.ID { return append([]peer.ID(nil), l.cfg.Granters...) }

// Prove returns an inclusion proof for the entry c.
func (l *Ledger) Prove(c cid.Cid) (*InclusionProof, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.set.Prove(c)
}

// LatestEpoch returns the highest-epoch contract for instance (fencing):
// its CID, its epoch and whether any contract exists.
func (l *Ledger) LatestEpoch(instance string) (cid.Cid, uint64, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	e, ep := l.set.LatestEpoch(instance)
	if e == nil {
		return cid.Undef, 0, false
	}
	return e.id, ep, true
}

// StoredBytes is the size of the ledger file (0 in memory).
func (l *Ledger) StoredBytes() int64 {
	if l.st == nil {
		return 0
	}
	n, _ := l.st.size()
	return n
}
