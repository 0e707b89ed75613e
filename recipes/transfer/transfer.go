package transfer

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/weftgrid/weft/recipes/store"
)

// Errors of a fetch.
var (
	// ErrNoProvider means no peer could provide the content.
	ErrNoProvider = errors.New("transfer: no provider could deliver the content")
	// ErrUnexpectedBlock means a provider sent a block nobody asked for.
	ErrUnexpectedBlock = errors.New("transfer: provider sent a block that was not asked for")
	// ErrIncomplete means a provider ended without sending every block.
	ErrIncomplete = errors.New("transfer: provider ended before sending everything")
	// ErrRemote is an error reported by the provider.
	ErrRemote = errors.New("transfer: provider refused")
	// ErrClosed means the service was closed.
	ErrClosed = errors.New("transfer: closed")
)

// ProtocolSuffix is appended to the grid's protocol prefix.
const ProtocolSuffix = "/content/1.0.0"

// ProtocolID returns the content protocol's ID under a grid's protocol
// prefix (e.g. "/weft" → "/weft/content/1.0.0").
func ProtocolID(prefix string) protocol.ID {
	return protocol.ID(strings.TrimSuffix(prefix, "/") + ProtocolSuffix)
}

// Routing announces and finds providers of content. The Kademlia DHT
// (*dht.IpfsDHT) implements it; transfertest.MemRouting is an in-memory one.
type Routing interface {
	// Provide announces that this node can serve c.
	Provide(ctx context.Context, c cid.Cid, announce bool) error
	// FindProvidersAsync streams up to count providers of c.
	FindProvidersAsync(ctx context.Context, c cid.Cid, count int) <-chan peer.AddrInfo
}

// Config tunes the service.
type Config struct {
	// ProtocolPrefix is the grid's protocol prefix. Default "/weft".
	ProtocolPrefix string
	// IdleTimeout fails a transfer when no frame arrives for this long. Default 20s.
	IdleTimeout time.Duration
	// AttemptTimeout bounds one attempt with one provider. Default 10m.
	AttemptTimeout time.Duration
	// MaxProviders is how many providers a fetch asks the routing for. Default 16.
	MaxProviders int
	// MaxServing bounds the streams served at once. Default 32. One peer
	// is served at most MaxServingPerPeer of them (or MaxServing when
	// smaller).
	MaxServing int
	// ProvideTimeout bounds announcing one CID. Default 1m.
	ProvideTimeout time.Duration
	// AskConnected is how many connected peers a fetch asks directly when
	// neither the hints nor the routing's providers delivered (a record
	// may not have reached the DHT yet on a young grid). Default 16; 0 never.
	AskConnected int
	// Parallel is how many providers one fetch downloads the chunks of
	// its content from at once (each takes a share of the chunks and
	// hands half of what it has left to a provider that joins). Each
	// needs up to 32 MiB of buffers while it streams. Default 3; 1
	// fetches from one provider at a time.
	Parallel int
}

// MaxServingPerPeer bounds the streams one peer is served at once: a peer
// that opens streams and never sends its request, or never reads, holds
// only its own share of MaxServing, not every slot.
const MaxServingPerPeer = 8

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{
		ProtocolPrefix: "/weft",
		IdleTimeout:    20 * time.Second,
		AttemptTimeout: 10 * time.Minute,
		MaxProviders:   16,
		MaxServing:     32,
		ProvideTimeout: time.Minute,
		AskConnected:   16,
		Parallel:       3,
	}
}

func (c *Config) validate() error {
	if c.IdleTimeout <= 0 || c.AttemptTimeout <= 0 || c.MaxProviders <= 0 || c.MaxServing <= 0 || c.ProvideTimeout <= 0 || c.AskConnected < 0 || c.Parallel <= 0 {
		return errors.New("transfer: timeouts and limits must be positive")
	}
	return nil
}

// Stats are counters of a service.
type Stats struct {
	// BytesServed and BytesFetched count block data.
	BytesServed, BytesFetched int64
	// Fetches and FailedAttempts count fetch calls and failed provider attempts.
	Fetches, FailedAttempts int64
}

// Service serves the content store to peers and fetches content from them.
type Service struct {
	host    host.Host
	store   *store.Store
	routing Routing
	cfg     Config
	log     *slog.Logger
	proto   protocol.ID

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	sem    chan struct{}

	mu       sync.Mutex
	inflight map[cid.Cid]*call
	perPeer  map[peer.ID]int // streams served per peer
	started  bool
	closed   bool

	bytesServed, bytesFetched, fetches, failed atomic.Int64
}

type call struct {
	done   chan struct{}
	err    error
	refs   int                // waiters (under Service.mu)
	cancel context.CancelFunc // stops the transfer
}

// New returns a service for h and st. routing may be nil (then fetches use
// only the peers they are given). It does nothing until Start.
func New(h host.Host, st *store.Store, routing Routing, cfg Config, log *slog.Logger) (*Service, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.Default()
	}
	if cfg.ProtocolPrefix == "" {
		cfg.ProtocolPrefix = "/weft"
	}
	return &Service{
		host: h, store: st, routing: routing, cfg: cfg, log: log.With("component", "transfer"),
		proto: ProtocolID(cfg.ProtocolPrefix), sem: make(chan struct{}, cfg.MaxServing),
		inflight: map[cid.Cid]*call{}, perPeer: map[peer.ID]int{},
	}, nil
}

// Protocol returns the protocol ID the service speaks.
func (s *Service) Protocol() protocol.ID { return s.proto }

// Store returns the content store.
func (s *Service) Store() *store.Store { return s.store }

// Stats returns the counters.
func (s *Service) Stats() Stats {
	return Stats{BytesServed: s.bytesServed.Load(), BytesFetched: s.bytesFetched.Load(),
		Fetches: s.fetches.Load(), FailedAttempts: s.failed.Load()}
}

// Start registers the protocol handler.
func (s *Service) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	if s.started {
		return nil
	}
	s.started = true
	s.ctx, s.cancel = context.WithCancel(context.WithoutCancel(ctx))
	s.host.SetStreamHandler(s.proto, s.handle)
	return nil
}

// Close removes the handler, cancels transfers and waits for them. It is
// safe to call more than once.
func (s *Service) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	started := s.started
	s.mu.Unlock()
	if started {
		s.host.RemoveStreamHandler(s.proto)
		s.cancel()
	}
	s.wg.Wait()
	return nil
}

func (s *Service) track() (context.Context, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || !s.started {
		return nil, false
	}
	s.wg.Add(1)
	return s.ctx, true
}

// enterPeer counts a stream served to p, unless p has its share already.
func (s *Service) enterPeer(p peer.ID) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.perPeer[p] >= min(MaxServingPerPeer, s.cfg.MaxServing) {
		return false
	}
	s.perPeer[p]++
	return true
}

func (s *Service) leavePeer(p peer.ID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.perPeer[p]--; s.perPeer[p] <= 0 {
		delete(s.perPeer, p)
	}
}

// handle serves one request stream.
func (s *Service) handle(st network.Stream) {
	ctx, ok := s.track()
	if !ok {
		_ = st.Reset()
		return
	}
	defer s.wg.Done()
	from := st.Conn().RemotePeer()
	if !s.enterPeer(from) {
		w := bufio.NewWriter(st)
		_ = WriteError(w, "busy: too many transfers to this peer; try another provider")
		_ = w.Flush()
		_ = st.Close()
		return
	}
	defer s.leavePeer(from)
	select {
	case s.sem <- struct{}{}:
		defer func() { <-s.sem }()
	default:
		w := bufio.NewWriter(st)
		_ = WriteError(w, "busy: too many transfers; try another provider")
		_ = w.Flush()
		_ = st.Close()
		return
	}
	stop := context.AfterFunc(ctx, func() { _ = st.Reset() })
	defer stop()
	_ = st.SetReadDeadline(time.Now().Add(s.cfg.IdleTimeout))
	r := bufio.NewReaderSize(st, 4096)
	want, walk, err := ReadRequest(r)
	if err != nil {
		s.log.Debug("bad request", "peer", st.Conn().RemotePeer(), "err", err)
		w := bufio.NewWriter(st)
		_ = WriteError(w, err.Error())
		_ = w.Flush()
		_ = st.Close() // not Reset: the fetcher should read why
		return
	}
	if err := s.serve(st, want, walk); err != nil {
		s.log.Debug("serve", "peer", st.Conn().RemotePeer(), "err", err)
		_ = st.Reset()
		return
	}
	_ = st.Close()
}

// blockBufs holds the buffers fetchers read block data into (a piece of a
// chunk on its way to the store, or a whole manifest), so that a transfer
// allocates almost nothing and the garbage collector stays quiet.
var blockBufs = sync.Pool{New: func() any {
	b := make([]byte, 0, readPiece)
	return &b
}}

func getBuf() *[]byte { return blockBufs.Get().(*[]byte) }

func putBuf(b *[]byte) {
	if cap(*b) <= store.ChunkSize { // buffers grown for manifests (up to 8 MiB) are not kept
		*b = (*b)[:0]
		blockBufs.Put(b)
	}
}

// serve streams the wanted blocks (and, with walk, what they link to).
// Each block is mapped from the store and handed to the stream as it is:
// the stream copies it once into its frames, with no read into a buffer
// first.
func (s *Service) serve(st network.Stream, want []cid.Cid, walk bool) (err error) {
	// A block file truncated behind the store's back faults when read
	// through its mapping: fail this stream, not the node.
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("transfer: reading a mapped block: %v", r)
		}
	}()
	w := bufio.NewWriterSize(st, 4096) // end and error frames
	queue := append([]cid.Cid(nil), want...)
	seen := make(map[cid.Cid]bool, len(want))
	for len(queue) > 0 {
		c := queue[0]
		queue = queue[1:]
		if seen[c] {
			continue
		}
		seen[c] = true
		data, release, err := s.store.MapBlock(c)
		if err != nil {
			_ = st.SetWriteDeadline(time.Now().Add(s.cfg.IdleTimeout))
			_ = WriteError(w, fmt.Sprintf("not found: %s", c))
			_ = w.Flush()
			return nil
		}
		links, err := func() ([]cid.Cid, error) {
			defer release() // also when reading the mapping faults
			return s.sendBlock(st, c, data, walk)
		}()
		if err != nil {
			var lerr linkError
			if errors.As(err, &lerr) {
				_ = st.SetWriteDeadline(time.Now().Add(s.cfg.IdleTimeout))
				_ = WriteError(w, lerr.Error())
				_ = w.Flush()
				return nil
			}
			return err
		}
		queue = append(queue, links...)
	}
	// The end frame may wait for the window as a piece does, after the
	// last piece used up its deadline.
	_ = st.SetWriteDeadline(time.Now().Add(s.cfg.IdleTimeout))
	if err := WriteEnd(w); err != nil {
		return err
	}
	return w.Flush()
}

// linkError is a block the provider cannot walk (told to the fetcher).
type linkError struct{ error }

// sendBlock writes the block frame of c and returns, with walk, the blocks
// it links to.
func (s *Service) sendBlock(st network.Stream, c cid.Cid, data []byte, walk bool) ([]cid.Cid, error) {
	var hb [MaxBlockHeader]byte
	// set is when the deadline was last moved, taken before the header:
	// the header may wait for the window too, and the first piece must
	// then get a deadline of its own.
	set := time.Now()
	_ = st.SetWriteDeadline(set.Add(s.cfg.IdleTimeout))
	if _, err := st.Write(AppendBlockHeader(hb[:0], c, len(data))); err != nil {
		return nil, err
	}
	for off := 0; off < len(data); off += wirePiece {
		// Each piece may wait at least 7/8 of IdleTimeout for the
		// fetcher's window (see idleReader).
		if now := time.Now(); now.Sub(set) > s.cfg.IdleTimeout/8 {
			_ = st.SetWriteDeadline(now.Add(s.cfg.IdleTimeout))
			set = now
		}
		if _, err := st.Write(data[off:min(off+wirePiece, len(data))]); err != nil {
			return nil, err
		}
	}
	s.bytesServed.Add(int64(len(data)))
	if !walk || c.Prefix().Codec != cid.DagCBOR {
		return nil, nil
	}
	links, err := store.Links(c, data)
	if err != nil {
		return nil, linkError{fmt.Errorf("cannot walk %s: %v", c, err)}
	}
	return links, nil
}

// Provide announces c in the routing (no-op without routing).
func (s *Service) Provide(ctx context.Context, c cid.Cid) error {
	if s.routing == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.ProvideTimeout)
	defer cancel()
	if err := s.routing.Provide(ctx, c, true); err != nil {
		return fmt.Errorf("transfer: provide %s: %w", c, err)
	}
	return nil
}

// Fetch makes the whole content c (a recipe with its artifacts, a blob, a
// tree) present in the local store: it asks the hinted peers first, then
// the providers the routing finds, verifying every block against its hash
// as it streams in, and moves on to the next provider when one lies, stops
// or lacks something. Blocks already received are kept, so the next
// provider only sends the rest. Once complete, the node provides c in turn.
// Concurrent fetches of the same CID share one transfer (hints of later
// callers are not used); it stops when every caller's ctx is done. Fetch
// needs a started service.
func (s *Service) Fetch(ctx context.Context, c cid.Cid, hints ...peer.ID) error {
	if err := store.CheckCID(c); err != nil {
		return err
	}
	if s.store.Has(c) {
		return nil
	}
	s.mu.Lock()
	if s.closed || !s.started {
		s.mu.Unlock()
		return ErrClosed
	}
	cl, ok := s.inflight[c]
	if !ok {
		// The transfer runs on its own, so that it survives any one waiter
		// giving up; it is cancelled when every waiter has.
		tctx, cancel := context.WithCancel(s.ctx)
		cl = &call{done: make(chan struct{}), cancel: cancel}
		s.inflight[c] = cl
		s.wg.Add(1)
		go s.runFetch(tctx, cl, c, hints)
	}
	cl.refs++
	s.mu.Unlock()
	select {
	case <-cl.done:
		return cl.err
	case <-ctx.Done():
		s.mu.Lock()
		if cl.refs--; cl.refs == 0 {
			cl.cancel()
			if s.inflight[c] == cl {
				delete(s.inflight, c) // a later Fetch starts afresh
			}
		}
		s.mu.Unlock()
		return ctx.Err()
	}
}

// runFetch is the shared transfer of c behind Fetch.
func (s *Service) runFetch(ctx context.Context, cl *call, c cid.Cid, hints []peer.ID) {
	defer s.wg.Done()
	err := s.fetch(ctx, c, hints)
	if err != nil && s.ctx.Err() != nil {
		// Close stopped it, not a waiter's context: say so (a waiter whose
		// own context is done returns that context's error anyway).
		err = fmt.Errorf("%w: fetch of %s stopped", ErrClosed, c)
	}
	cl.cancel()
	s.mu.Lock()
	if s.inflight[c] == cl {
		delete(s.inflight, c)
	}
	cl.err = err
	s.mu.Unlock()
	close(cl.done)
	if err == nil && s.routing != nil {
		if perr := s.Provide(s.ctx, c); perr != nil {
			s.log.Debug("provide after fetch", "cid", c, "err", perr)
		}
	}
}

// directDialTimeout bounds the attempt at a direct connection before a
// transfer falls back to a relayed one.
const directDialTimeout = 3 * time.Second

// preferDirect tries, when the only connection to p is relayed (limited:
// its data is capped), to open a direct one first; the transfer then uses
// it, or the relay within its limits when the direct dial fails.
func (s *Service) preferDirect(ctx context.Context, p peer.ID) {
	conns := s.host.Network().ConnsToPeer(p)
	if len(conns) == 0 {
		return
	}
	for _, c := range conns {
		if !c.Stat().Limited {
			return
		}
	}
	dctx, cancel := context.WithTimeout(network.WithForceDirectDial(ctx, "content"), directDialTimeout)
	defer cancel()
	_ = s.host.Connect(dctx, peer.AddrInfo{ID: p})
}

// request asks p for want (with walk, and every block they link to) and
// stores what arrives. Before each block, stopAt (when not nil) may end the
// request: the stream is reset and what arrived before is kept. It returns
// how many new blocks were stored.
func (s *Service) request(ctx context.Context, p peer.ID, want []cid.Cid, walk bool, stopAt func(cid.Cid) bool) (int, error) {
	s.preferDirect(ctx, p)
	st, err := s.host.NewStream(network.WithAllowLimitedConn(ctx, "content"), p, s.proto)
	if err != nil {
		return 0, fmt.Errorf("transfer: open stream: %w", err)
	}
	stop := context.AfterFunc(ctx, func() { _ = st.Reset() })
	defer stop()
	defer st.Close()
	_ = st.SetWriteDeadline(time.Now().Add(s.cfg.IdleTimeout))
	if err := WriteRequest(st, want, walk); err != nil {
		_ = st.Reset()
		return 0, err
	}
	_ = st.CloseWrite()
	expected := make(map[cid.Cid]bool, len(want))
	for _, c := range want {
		expected[c] = true
	}
	// One goroutine reads every frame and stores each block as it streams
	// in (the stream decrypts in yamux's own goroutine): each piece of
	// data is written into the block's temporary file right after it is
	// read, while it is in the CPU cache, and a block joins the store only
	// once it matched its CID. Raw chunks are checked 16 at a time with
	// sha256x16 where the CPU has it (see batch); anything else is hashed
	// piece by piece as it arrives.
	// Idle, not slow: each read may wait IdleTimeout, so a provider on a
	// thin uplink delivers a 1 MiB chunk however long it takes as long as
	// data keeps coming.
	r := bufio.NewReaderSize(&idleReader{st: st, timeout: s.cfg.IdleTimeout}, 64<<10)
	hs := sha256.New()
	bp := getBuf()
	defer putBuf(bp)
	var bw *store.BlockWriter
	defer func() {
		if bw != nil {
			bw.Abort()
		}
	}()
	b := &chunks{s: s}
	defer b.release()
	begin := func(fh FrameHeader) (io.Writer, bool, error) {
		if !expected[fh.CID] {
			return nil, false, fmt.Errorf("%w: %s", ErrUnexpectedBlock, fh.CID)
		}
		delete(expected, fh.CID)
		w, err := s.store.NewBlockWriter(fh.CID)
		if err != nil {
			return nil, false, fmt.Errorf("block %s: %w", fh.CID, err)
		}
		bw = w
		// The fetcher needs a manifest's links: keep its data.
		return w, fh.CID.Prefix().Codec == cid.DagCBOR, nil
	}
	stored := 0
	// fail ends the request with err after keeping the chunks that arrived
	// whole before it and match their CIDs.
	fail := func(err error) (int, error) {
		_ = st.Reset()
		n, verr := b.settle()
		stored += n
		if verr != nil {
			return stored, verr // it came first in the stream
		}
		if ctx.Err() != nil {
			return stored, ctx.Err()
		}
		return stored, err
	}
	for {
		fh, err := ReadFrameHeader(r)
		if err != nil {
			return fail(err)
		}
		switch fh.Type {
		case FrameEnd:
			n, err := b.settle()
			stored += n
			if err != nil {
				_ = st.Reset()
			}
			return stored, err
		case FrameError:
			return fail(fmt.Errorf("%w: %s", ErrRemote, fh.Msg))
		}
		if stopAt != nil && stopAt(fh.CID) {
			// Another provider sends the rest.
			_ = st.Reset()
			n, err := b.settle()
			return stored + n, err
		}
		if takesChunk(fh) {
			if _, _, err := begin(fh); err != nil {
				return fail(err)
			}
			w := bw
			bw = nil // the batch owns it now
			if err := b.receive(r, fh, w); err != nil {
				return fail(err)
			}
			if b.full() {
				n, err := b.handOff()
				stored += n
				if err != nil {
					_ = st.Reset()
					return stored, err
				}
			}
			continue
		}
		// Blocks are kept in stream order: what waits in the batch is
		// checked before this block is.
		n, err := b.settle()
		stored += n
		if err != nil {
			_ = st.Reset()
			return stored, err
		}
		data, verr, err := receiveVerified(r, fh, (*bp)[:0], hs, begin)
		*bp = data
		if err != nil {
			return fail(err)
		}
		if verr != nil {
			_ = st.Reset()
			return stored, fmt.Errorf("block %s: %w", fh.CID, verr)
		}
		err = bw.Commit()
		bw = nil
		if err != nil {
			_ = st.Reset()
			return stored, fmt.Errorf("block %s: %w", fh.CID, err)
		}
		stored++
		s.bytesFetched.Add(int64(fh.Len))
		if fh.CID.Prefix().Codec == cid.DagCBOR {
			links, err := store.Links(fh.CID, data)
			if err != nil {
				_ = st.Reset()
				return stored, err
			}
			for _, l := range links {
				expected[l] = true
			}
		}
	}
}

// receiveVerified receives the data of the block frame fh. begin is called
// first (its error ends the read) and says where the data goes: each piece
// of at most readPiece bytes is hashed right after it is read and then
// written to w, while it is still in the CPU cache; with keep, the whole
// data is also returned in buf (grown as needed; else buf only holds the
// piece being read). At the end of the block the digest is compared with
// the CID's: verr says why it does not match (then what w received must be
// dropped, and the stream too). err is a broken or cut stream, or begin's
// or w's error.
func receiveVerified(r *bufio.Reader, fh FrameHeader, buf []byte, hs hash.Hash, begin func(FrameHeader) (w io.Writer, keep bool, err error)) (data []byte, verr, err error) {
	digest, verr := store.Digest(fh.CID)
	if verr != nil {
		return buf, verr, nil
	}
	w, keep, err := begin(fh)
	if err != nil {
		return buf, nil, err
	}
	hs.Reset()
	data, err = readBlockData(r, fh.Len, buf, keep, hs, w)
	if err != nil {
		return data, nil, fmt.Errorf("block %s: %w", fh.CID, err)
	}
	var sum [sha256.Size]byte
	if !bytes.Equal(hs.Sum(sum[:0]), digest) {
		return data, fmt.Errorf("%w: %s", store.ErrHashMismatch, fh.CID), nil
	}
	return data, nil, nil
}

// batchHash says whether fetchers check raw chunks in batches with
// sha256x16 (where the CPU has it; tests turn it off to cover the other
// path).
var batchHash = haveX16

// batchLen is how many chunks a batch holds: one per lane of sha256x16.
const batchLen = 16

// arenas holds the memory batches receive chunks into (16 MiB each).
var arenas = sync.Pool{New: func() any {
	b := make([]byte, batchLen*store.ChunkSize)
	return &b
}}

// batch holds raw chunks that arrived whole, each already in its
// temporary file (store.BlockWriter), until they are checked together:
// verify hashes them side by side with sha256x16 and commits them in
// stream order up to the first that does not match its CID; that one and
// everything after it are dropped. Nothing in a batch is part of the
// store before verify.
type batch struct {
	s     *Service
	arena *[]byte
	x     *sha256x16
	cids  []cid.Cid
	ws    []*store.BlockWriter
	data  [][]byte
	sums  [batchLen][sha256.Size]byte
}

// chunks are the batches of one request: one receives chunks while the
// previous one is checked in a goroutine of its own (hashing 16 MiB takes
// a few milliseconds, during which the stream goes on), and they are
// committed in stream order.
type chunks struct {
	s          *Service
	cur, spare *batch
	checking   chan checked // the batch being checked; nil if none
}

// checked is the outcome of checking a batch.
type checked struct {
	b   *batch
	n   int
	err error
}

func (c *chunks) receive(r *bufio.Reader, fh FrameHeader, w *store.BlockWriter) error {
	if c.cur == nil {
		c.cur = &batch{s: c.s}
	}
	return c.cur.receive(r, fh, w)
}

func (c *chunks) full() bool { return c.cur != nil && c.cur.full() }

// wait returns what the batch being checked committed and why it stopped.
func (c *chunks) wait() (int, error) {
	if c.checking == nil {
		return 0, nil
	}
	r := <-c.checking
	c.checking = nil
	c.spare = r.b
	return r.n, r.err
}

// handOff waits for the previous batch, then starts checking the current
// one and receives into the other. It returns what the previous one
// committed; after its error, the current one is dropped.
func (c *chunks) handOff() (int, error) {
	n, err := c.wait()
	if err != nil {
		c.cur.clear()
		return n, err
	}
	b := c.cur
	c.cur, c.spare = c.spare, nil
	if c.cur == nil {
		c.cur = &batch{s: c.s}
	}
	done := make(chan checked, 1)
	c.checking = done
	go func() {
		n, err := b.verify()
		done <- checked{b, n, err}
	}()
	return n, nil
}

// settle checks everything received so far: it returns how many chunks
// it committed and the first mismatch or error, after which nothing is
// committed.
func (c *chunks) settle() (int, error) {
	n, err := c.wait()
	if c.cur == nil {
		return n, err
	}
	if err != nil {
		c.cur.clear()
		return n, err
	}
	m, err := c.cur.verify()
	return n + m, err
}

// release waits for a check in progress, drops what is not committed and
// gives the arenas back.
func (c *chunks) release() {
	_, _ = c.wait()
	for _, b := range []*batch{c.cur, c.spare} {
		if b != nil {
			b.release()
		}
	}
}

// takesChunk says whether the block frame fh goes into a batch: a raw chunk
// of at most store.ChunkSize bytes with a CID the store accepts.
func takesChunk(fh FrameHeader) bool {
	return batchHash && fh.Len <= store.ChunkSize && store.CheckCID(fh.CID) == nil && fh.CID.Prefix().Codec == cid.Raw
}

// receive reads the data of fh into the next slot of the arena and, piece
// by piece, into w; the chunk then waits in the batch (w belongs to it).
func (b *batch) receive(r *bufio.Reader, fh FrameHeader, w *store.BlockWriter) error {
	if b.arena == nil {
		b.arena = arenas.Get().(*[]byte)
		b.x = newSHA256x16()
	}
	i := len(b.cids)
	slot := (*b.arena)[i*store.ChunkSize : (i+1)*store.ChunkSize]
	data, err := readBlockData(r, fh.Len, slot[:0], true, nil, w)
	if err != nil {
		w.Abort()
		return fmt.Errorf("block %s: %w", fh.CID, err)
	}
	b.cids = append(b.cids, fh.CID)
	b.ws = append(b.ws, w)
	b.data = append(b.data, data)
	return nil
}

func (b *batch) full() bool { return len(b.cids) == batchLen }

// verify checks the chunks of the batch against their CIDs, commits them
// in order up to the first that does not match (whose error it returns)
// and drops the rest; it returns how many it committed and empties the
// batch.
func (b *batch) verify() (int, error) {
	if len(b.cids) == 0 {
		return 0, nil
	}
	defer b.clear()
	b.x.sum(*b.arena, b.data, b.sums[:len(b.data)])
	for i, c := range b.cids {
		digest, err := store.Digest(c)
		if err == nil && !bytes.Equal(b.sums[i][:], digest) {
			err = fmt.Errorf("block %s: %w: %s", c, store.ErrHashMismatch, c)
		}
		if err == nil {
			if err = b.ws[i].Commit(); err != nil {
				err = fmt.Errorf("block %s: %w", c, err)
			}
		}
		if err != nil {
			return i, err // clear drops the rest
		}
		b.s.bytesFetched.Add(int64(len(b.data[i])))
	}
	return len(b.cids), nil
}

// clear drops the chunks still waiting (Abort does nothing on committed
// ones) and empties the batch.
func (b *batch) clear() {
	for _, w := range b.ws {
		w.Abort()
	}
	clear(b.ws)
	clear(b.data)
	b.cids, b.ws, b.data = b.cids[:0], b.ws[:0], b.data[:0]
}

// release drops what waits and gives the arena back.
func (b *batch) release() {
	b.clear()
	if b.arena != nil {
		arenas.Put(b.arena)
		b.arena = nil
	}
}

// wirePiece is the largest write that yamux sends as one frame inside one
// Noise message: a Noise message carries at most 65 519 bytes of plaintext
// and a yamux frame header takes 12 of them. A larger write becomes frames
// of 65 536 bytes that straddle two Noise messages each (two encryptions,
// two socket writes, and on the fetcher two decryptions and a copy).
const wirePiece = 65519 - 12

// idleReader reads from a stream with a deadline on silence, not on the
// time a whole frame takes: each read may wait at least 7/8 of timeout.
// (The deadline is moved only when an eighth of it has passed: setting
// one costs a timer.)
type idleReader struct {
	st      network.Stream
	timeout time.Duration
	set     time.Time // when the deadline was last moved
}

func (r *idleReader) Read(p []byte) (int, error) {
	if now := time.Now(); now.Sub(r.set) > r.timeout/8 {
		_ = r.st.SetReadDeadline(now.Add(r.timeout))
		r.set = now
	}
	return r.st.Read(p)
}
