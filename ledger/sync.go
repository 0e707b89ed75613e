package ledger

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"github.com/libp2p/go-libp2p/core/protocol"
	"io"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/fxamacker/cbor/v2"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/weftgrid/weft/recipes/wire"
)

// SyncProtocol is the stream protocol ID suffix of anti-entropy; the
// adapter prefixes it with the grid's protocol prefix. 1.1.0: heads carry
// a digest of each log. A 1.1.0 node still speaks SyncProtocolV1 (heads
// without digests, which 1.0.0 decoders reject as an unknown field) with
// nodes that know only that, so a grid upgraded node by node keeps its
// replicas converging and its providers billing (they bill a slice only
// after a sync).
const (
	SyncProtocol   = "/weft/ledger/sync/1.1.0"
	SyncProtocolV1 = "/weft/ledger/sync/1.0.0"
)

// legacySync reports whether the stream speaks SyncProtocolV1 (a libp2p
// stream says which protocol it negotiated).
func legacySync(rw any) bool {
	p, ok := rw.(interface{ Protocol() protocol.ID })
	return ok && strings.HasSuffix(string(p.Protocol()), SyncProtocolV1)
}

// Sync wire limits.
const (
	// MaxFrame bounds one sync frame, in bytes.
	MaxFrame = 8 << 20
	// MaxBatch bounds the entries in one batch frame.
	MaxBatch = 1024
	// MaxHeads bounds the authors in one hello frame.
	MaxHeads = 1 << 16
)

// helloMsg opens each side of a sync: a digest of the sender's heads and
// the heads themselves. Equal digests mean both hold the same entries of
// every log (same contiguous prefix, highest seq, count and per-log digest
// of the CIDs held), so the exchange ends; computing it costs O(authors)
// plus what was added since the last hello, not O(entries) like the
// Merkle root.
type helloMsg struct {
	_     struct{} `cbor:",toarray"`
	Root  []byte
	Heads []Head
}

// headsDigest is sha2-256 over the canonical encoding of heads.
func headsDigest(heads []Head) []byte {
	b, err := marshal(heads)
	if err != nil {
		panic(err) // heads always encode
	}
	sum := sha256.Sum256(b)
	return sum[:]
}

// batchMsg carries entries; Done marks the sender's last batch.
type batchMsg struct {
	_       struct{} `cbor:",toarray"`
	Entries [][]byte
	Done    bool
}

var syncDec cbor.DecMode

func init() {
	syncDec = wire.MustDecMode(ledgerDecOptions(wire.Limits{Nesting: 6, Elements: MaxHeads, MapPairs: 16}))
}

// decodeHello parses a hello frame.
func decodeHello(b []byte) (helloMsg, error) {
	var m helloMsg
	if len(b) > MaxFrame {
		return m, ErrTooLarge
	}
	if err := syncDec.Unmarshal(b, &m); err != nil {
		return m, fmt.Errorf("%w: hello: %w", ErrMalformed, err)
	}
	if len(m.Root) > 64 {
		return m, fmt.Errorf("%w: hello: root of %d bytes", ErrMalformed, len(m.Root))
	}
	for _, h := range m.Heads {
		if _, err := pubKeyOf(h.Author); err != nil {
			return m, fmt.Errorf("%w: hello: %w", ErrMalformed, err)
		}
		if h.Contig > h.Max || (h.Count < h.Contig) {
			return m, fmt.Errorf("%w: hello: inconsistent head", ErrMalformed)
		}
		if len(h.Digest) != 0 && len(h.Digest) != sha256.Size {
			return m, fmt.Errorf("%w: hello: head digest of %d bytes", ErrMalformed, len(h.Digest))
		}
	}
	return m, nil
}

// decodeBatch parses a batch frame.
func decodeBatch(b []byte) (batchMsg, error) {
	var m batchMsg
	if len(b) > MaxFrame {
		return m, ErrTooLarge
	}
	if err := syncDec.Unmarshal(b, &m); err != nil {
		return m, fmt.Errorf("%w: batch: %w", ErrMalformed, err)
	}
	if len(m.Entries) > MaxBatch {
		return m, fmt.Errorf("%w: batch of %d entries (max %d)", ErrTooLarge, len(m.Entries), MaxBatch)
	}
	for _, e := range m.Entries {
		if len(e) > MaxEntrySize {
			return m, fmt.Errorf("%w: entry of %d bytes", ErrTooLarge, len(e))
		}
	}
	return m, nil
}

// frame I/O: uvarint length, then the CBOR message.
func writeFrame(w *bufio.Writer, v any) error {
	b, err := marshal(v)
	if err != nil {
		return err
	}
	var hdr [binary.MaxVarintLen64]byte
	n := binary.PutUvarint(hdr[:], uint64(len(b)))
	if _, err := w.Write(hdr[:n]); err != nil {
		return err
	}
	if _, err := w.Write(b); err != nil {
		return err
	}
	return nil
}

func readFrame(r *bufio.Reader) ([]byte, error) {
	n, err := binary.ReadUvarint(r)
	if err != nil {
		return nil, err
	}
	if n > MaxFrame {
		return nil, fmt.Errorf("%w: frame of %d bytes", ErrTooLarge, n)
	}
	b := make([]byte, n)
	_, err = io.ReadFull(r, b)
	return b, err
}

// SyncStats says what one anti-entropy exchange moved.
type SyncStats struct {
	// Same is true when both roots were equal (nothing moved).
	Same bool
	// Sent and Received count entries; Added counts received entries that were new.
	Sent, Received, Added int
}

func (l *Ledger) hello(legacy bool) helloMsg {
	l.mu.Lock()
	defer l.mu.Unlock()
	heads := l.set.Heads()
	if legacy {
		for i := range heads {
			heads[i].Digest = nil
		}
	}
	return helloMsg{Root: headsDigest(heads), Heads: heads}
}

func (l *Ledger) missingFor(heads []Head) [][]byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	es := l.set.Missing(heads)
	out := make([][]byte, len(es))
	for i, e := range es {
		out[i] = e.raw
	}
	return out
}

func sendBatches(w *bufio.Writer, raws [][]byte) error {
	for len(raws) > 0 {
		n := min(len(raws), MaxBatch)
		if err := writeFrame(w, batchMsg{Entries: raws[:n]}); err != nil {
			return err
		}
		raws = raws[n:]
	}
	if err := writeFrame(w, batchMsg{Done: true}); err != nil {
		return err
	}
	return w.Flush()
}

// receiveBatches reads batch frames until Done and feeds them to
// IngestStream, so reading, verifying and committing overlap.
func (l *Ledger) receiveBatches(ctx context.Context, r *bufio.Reader, st *SyncStats) error {
	in := make(chan [][]byte, 2)
	type result struct {
		added int
		err   error
	}
	done := make(chan result, 1)
	go func() {
		n, err := l.IngestStream(ctx, in)
		done <- result{n, err}
	}()
	var readErr error
	for {
		b, err := readFrame(r)
		if err != nil {
			readErr = err
			break
		}
		m, err := decodeBatch(b)
		if err != nil {
			readErr = err
			break
		}
		st.Received += len(m.Entries)
		if len(m.Entries) > 0 {
			select {
			case in <- m.Entries:
			case <-ctx.Done():
				readErr = ctx.Err()
			}
		}
		if m.Done || readErr != nil {
			break
		}
	}
	close(in)
	res := <-done
	st.Added = res.added
	return errors.Join(readErr, res.err)
}

// Sync runs the initiator side of anti-entropy over an open stream: send
// hello; read the peer's hello; if roots differ, receive what this node
// lacks, then send what the peer lacks.
func (l *Ledger) Sync(ctx context.Context, rw io.ReadWriter) (st SyncStats, err error) {
	defer l.noteSync(l.cfg.Now(), &err)
	r, w := bufio.NewReaderSize(rw, 64<<10), bufio.NewWriterSize(rw, 64<<10)
	mine := l.hello(legacySync(rw))
	if err := writeFrame(w, mine); err != nil {
		return st, err
	}
	if err := w.Flush(); err != nil {
		return st, err
	}
	b, rerr := readFrame(r)
	if rerr != nil {
		return st, rerr
	}
	theirs, err := decodeHello(b)
	if err != nil {
		return st, err
	}
	if bytes.Equal(theirs.Root, mine.Root) {
		st.Same = true
		return st, nil
	}
	if err := l.receiveBatches(ctx, r, &st); err != nil {
		return st, err
	}
	out := l.missingFor(theirs.Heads)
	st.Sent = len(out)
	return st, sendBatches(w, out)
}

// ServeSync runs the responder side of anti-entropy over an accepted stream.
//
// It counts as a completed exchange (LastSync) only when it received the
// initiator's batches: those are computed after the initiator read this
// node's hello, so they hold everything the initiator held when this side
// began. An exchange that ends at once on equal hellos does not count: the
// initiator's hello may be older than this side's start (a stream opened
// over a connection that was cut, delivered when it healed), so equal
// roots prove nothing about what the initiator holds now.
func (l *Ledger) ServeSync(ctx context.Context, rw io.ReadWriter) (st SyncStats, err error) {
	start := l.cfg.Now()
	defer func() {
		if !st.Same {
			l.noteSync(start, &err)
		}
	}()
	r, w := bufio.NewReaderSize(rw, 64<<10), bufio.NewWriterSize(rw, 64<<10)
	b, err := readFrame(r)
	if err != nil {
		return st, err
	}
	theirs, err := decodeHello(b)
	if err != nil {
		return st, err
	}
	mine := l.hello(legacySync(rw))
	if err := writeFrame(w, mine); err != nil {
		return st, err
	}
	if bytes.Equal(theirs.Root, mine.Root) {
		st.Same = true
		return st, w.Flush()
	}
	out := l.missingFor(theirs.Heads)
	st.Sent = len(out)
	if err := sendBatches(w, out); err != nil {
		return st, err
	}
	return st, l.receiveBatches(ctx, r, &st)
}

// noteSync records that an exchange begun at start completed (*err nil):
// this node then holds every entry its peer held at start.
func (l *Ledger) noteSync(start time.Time, err *error) {
	if *err != nil {
		return
	}
	t := start.UnixNano()
	for {
		old := l.lastSync.Load()
		if old >= t || l.lastSync.CompareAndSwap(old, t) {
			return
		}
	}
}

// LastSync is when the most recent anti-entropy exchange that completed
// began (zero time before any): by then this node held every entry that
// exchange's peer held.
func (l *Ledger) LastSync() time.Time {
	if t := l.lastSync.Load(); t != 0 {
		return time.Unix(0, t)
	}
	return time.Time{}
}

// PeerPicker lists the peers anti-entropy may pick from.
type PeerPicker interface {
	Peers() []peer.ID
}

// StreamOpener opens a sync stream to a peer.
type StreamOpener interface {
	OpenSync(ctx context.Context, p peer.ID) (io.ReadWriteCloser, error)
}

// SyncConfig tunes anti-entropy.
type SyncConfig struct {
	// Interval between rounds of exchanges with random peers. Default 1s.
	Interval time.Duration
	// Timeout of one exchange. Default 15s: short, so that a peer that
	// stopped answering (black-holed, paused) holds one of the Fanout slots
	// only briefly; an exchange cut short keeps the batches it received,
	// so a long catch-up still progresses.
	Timeout time.Duration
	// Fanout is how many exchanges run at once, each with a different
	// peer: every round starts exchanges with random peers that have none
	// running, up to Fanout in flight. Billing waits for an exchange with
	// any peer, so one unreachable peer never stalls it. Default 3.
	Fanout int
	// Seed seeds the peer choice (0: random).
	Seed uint64
}

// DefaultSyncConfig returns the defaults.
func DefaultSyncConfig() SyncConfig {
	return SyncConfig{Interval: time.Second, Timeout: 15 * time.Second, Fanout: 3}
}

// SyncWith runs one exchange with p.
func (l *Ledger) SyncWith(ctx context.Context, opener StreamOpener, p peer.ID) (SyncStats, error) {
	s, err := opener.OpenSync(ctx, p)
	if err != nil {
		return SyncStats{}, err
	}
	defer s.Close()
	// A stalled peer must not hold the exchange (and Close, which waits
	// for the anti-entropy loop) until the deadline: abort the stream as
	// soon as ctx ends.
	stop := context.AfterFunc(ctx, func() {
		if r, ok := s.(interface{ Reset() error }); ok {
			_ = r.Reset()
			return
		}
		_ = s.Close()
	})
	defer stop()
	if d, ok := ctx.Deadline(); ok {
		if ds, ok := s.(interface{ SetDeadline(time.Time) error }); ok {
			_ = ds.SetDeadline(d)
		}
	}
	return l.Sync(ctx, s)
}

// TriggerSync asks the anti-entropy loop to exchange with p now (call it
// when p connects). It never blocks.
func (l *Ledger) TriggerSync(p peer.ID) {
	select {
	case l.syncReq <- p:
	default:
	}
}

// StartSync starts anti-entropy: every Interval (with ±25% jitter) a round
// of exchanges with random peers from picker (up to Fanout at once, never
// two with one peer), plus exchanges asked for by TriggerSync. While the
// picker has offered no peer since the start, the node is alone
// (Ledger.Alone). It stops on Close or when ctx ends.
func (l *Ledger) StartSync(ctx context.Context, picker PeerPicker, opener StreamOpener, cfg SyncConfig) {
	if cfg.Interval <= 0 {
		cfg.Interval = time.Second
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 15 * time.Second
	}
	if cfg.Fanout <= 0 {
		cfg.Fanout = 3
	}
	seed := cfg.Seed
	if seed == 0 {
		seed = rand.Uint64()
	}
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	ctx, cancel := context.WithCancel(ctx)
	l.wg.Add(2)
	go func() {
		defer l.wg.Done()
		select {
		case <-l.closed:
		case <-ctx.Done():
		}
		cancel()
	}()
	go func() {
		defer l.wg.Done()
		var mu sync.Mutex
		inFlight := map[peer.ID]bool{}
		var running sync.WaitGroup
		defer running.Wait()
		// start runs an exchange with p in its own goroutine unless one
		// with p runs already or Fanout are in flight (triggered exchanges
		// may exceed Fanout by one each: a new connection is worth it).
		start := func(p peer.ID, triggered bool) bool {
			mu.Lock()
			if inFlight[p] || (!triggered && len(inFlight) >= cfg.Fanout) {
				mu.Unlock()
				return false
			}
			inFlight[p] = true
			mu.Unlock()
			l.peered.Store(true)
			running.Add(1)
			go func() {
				defer running.Done()
				defer func() { mu.Lock(); delete(inFlight, p); mu.Unlock() }()
				cctx, ccancel := context.WithTimeout(ctx, cfg.Timeout)
				defer ccancel()
				st, err := l.SyncWith(cctx, opener, p)
				if err != nil {
					l.log.Debug("ledger: anti-entropy failed", "peer", p, "err", err)
				} else if st.Added > 0 || st.Sent > 0 {
					l.log.Debug("ledger: anti-entropy", "peer", p, "received", st.Received, "added", st.Added, "sent", st.Sent)
				}
			}()
			return true
		}
		jitter := func() time.Duration {
			return cfg.Interval*3/4 + time.Duration(rng.Int64N(int64(cfg.Interval)/2+1))
		}
		t := l.cfg.Clock.NewTimer(0)
		defer t.Stop()
		rounds := 0
		for {
			select {
			case <-ctx.Done():
				return
			case p := <-l.syncReq:
				start(p, true)
			case <-t.C():
				var cands []peer.ID
				for _, p := range picker.Peers() {
					if p != l.ID() {
						cands = append(cands, p)
					}
				}
				rounds++
				if len(cands) == 0 && !l.peered.Load() && rounds > aloneRounds {
					l.alone.Store(l.cfg.Now().UnixNano())
				}
				rng.Shuffle(len(cands), func(i, j int) { cands[i], cands[j] = cands[j], cands[i] })
				for _, p := range cands {
					mu.Lock()
					full := len(inFlight) >= cfg.Fanout
					mu.Unlock()
					if full {
						break
					}
					start(p, false)
				}
				t.Reset(jitter())
			}
		}
	}()
}

// aloneRounds is how many rounds without any peer a node waits after the
// start before it counts as alone: a node given bootstrap peers has
// connected to one by then.
const aloneRounds = 2

// Alone reports until when this node has been alone: the last anti-entropy
// round at which its peer picker had offered no peer at all since the start
// (zero once it has had one, and during the first aloneRounds rounds). A node alone is a
// grid of one: nobody else can hold a newer contract for the instances it
// requested, so it bills them without waiting for a sync.
func (l *Ledger) Alone() time.Time {
	if t := l.alone.Load(); t != 0 && !l.peered.Load() {
		return time.Unix(0, t)
	}
	return time.Time{}
}
