package transfer_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/weftgrid/weft/recipes"
	"github.com/weftgrid/weft/recipes/store"
	"github.com/weftgrid/weft/recipes/transfer"
	"github.com/weftgrid/weft/recipes/transfer/transfertest"
)

func newHost(t testing.TB) host.Host {
	t.Helper()
	h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.DisableRelay())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

func connect(t testing.TB, a, b host.Host) {
	t.Helper()
	if err := a.Connect(context.Background(), peer.AddrInfo{ID: b.ID(), Addrs: b.Addrs()}); err != nil {
		t.Fatal(err)
	}
}

type node struct {
	h   host.Host
	st  *store.Store
	svc *transfer.Service
}

func newNode(t testing.TB, mr *transfertest.MemRouting) *node {
	t.Helper()
	return newNodeAsking(t, mr, 0)
}

// newNodeAsking is newNode with Config.AskConnected set to ask.
func newNodeAsking(t testing.TB, mr *transfertest.MemRouting, ask int) *node {
	t.Helper()
	return newNodeWith(t, mr, func(c *transfer.Config) { c.AskConnected = ask })
}

// newSequentialNode is a fetcher that asks one provider at a time
// (Config.Parallel 1), in the order given: for tests of what a fetch does
// after one provider fails.
func newSequentialNode(t testing.TB) *node {
	t.Helper()
	return newNodeWith(t, nil, func(c *transfer.Config) { c.AskConnected, c.Parallel = 0, 1 })
}

// newNodeWith is newNode with the config changed by set.
func newNodeWith(t testing.TB, mr *transfertest.MemRouting, set func(*transfer.Config)) *node {
	t.Helper()
	h := newHost(t)
	st, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	cfg := transfer.DefaultConfig()
	cfg.IdleTimeout = 3 * time.Second
	set(&cfg)
	var r transfer.Routing
	if mr != nil {
		r = mr.For(h)
	}
	svc, err := transfer.New(h, st, r, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Close() })
	return &node{h: h, st: st, svc: svc}
}

func randBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

// publishRecipe stores a recipe with a 3.5-chunk artifact on n.
func publishRecipe(t testing.TB, n *node) (*recipes.Recipe, cid.Cid, []byte) {
	t.Helper()
	art := randBytes(3*store.ChunkSize + store.ChunkSize/2)
	ac, err := n.st.PutBytes(art)
	if err != nil {
		t.Fatal(err)
	}
	src := fmt.Sprintf(`name = "app"
version = "1"
[[files]]
path = "app.bin"
cid = %q
[types.default]
[[types.default.processes]]
name = "run"
command = "/bin/true"
`, ac)
	r, err := recipes.Parse("app.toml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	c, err := n.st.PutRecipe(r)
	if err != nil {
		t.Fatal(err)
	}
	return r, c, art
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestFetchRecipeWithArtifactsThroughRouting(t *testing.T) {
	mr := transfertest.NewMemRouting()
	a, b, c := newNode(t, mr), newNode(t, mr), newNode(t, mr)
	connect(t, b.h, a.h)
	connect(t, c.h, b.h)
	r, rc, art := publishRecipe(t, a)
	if err := a.svc.Provide(context.Background(), rc); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := b.svc.Fetch(ctx, rc); err != nil {
		t.Fatal(err)
	}
	got, err := b.st.Recipe(rc)
	if err != nil || got.CID() != r.CID() {
		t.Fatalf("recipe after fetch: %v", err)
	}
	ac := r.ArtifactCIDs()[0]
	data, err := b.st.Get(ac, 0)
	if err != nil || !bytes.Equal(data, art) {
		t.Fatalf("artifact after fetch: %d bytes, %v", len(data), err)
	}
	// b provides it in turn; c fetches it from b once a is gone.
	waitFor(t, "b to provide the recipe", func() bool { return slices.Contains(mr.Providers(rc), b.h.ID()) })
	a.svc.Close()
	a.h.Close()
	if err := c.svc.Fetch(ctx, rc); err != nil {
		t.Fatal(err)
	}
	if !c.st.Has(rc) {
		t.Fatal("c lacks the content after fetching it")
	}
}

func TestFetchRejectsLyingProviderAndRetries(t *testing.T) {
	liar, honest, f := newNode(t, nil), newNode(t, nil), newSequentialNode(t)
	connect(t, f.h, liar.h)
	connect(t, f.h, honest.h)
	_, rc, _ := publishRecipe(t, liar)
	r2, rc2, _ := publishRecipe(t, honest)
	_ = r2
	// The liar's copy is the honest recipe, with one chunk corrupted on disk.
	copyContent(t, honest.st, liar.st, rc2)
	chunk := firstChunk(t, liar.st, rc2)
	corrupt(t, liar.st, chunk)

	err := f.svc.Fetch(context.Background(), rc2, liar.h.ID())
	if !errors.Is(err, transfer.ErrNoProvider) || !errors.Is(err, store.ErrHashMismatch) {
		t.Fatalf("want a hash mismatch from the only provider, got %v", err)
	}
	if f.st.HasBlock(chunk) {
		t.Fatal("a block that failed verification was stored")
	}
	if err := f.svc.Fetch(context.Background(), rc2, liar.h.ID(), honest.h.ID()); err != nil {
		t.Fatalf("retry from the honest provider: %v", err)
	}
	if !f.st.Has(rc2) {
		t.Fatal("content incomplete after retry")
	}
	if f.svc.Stats().FailedAttempts < 2 {
		t.Fatalf("failed attempts = %d, want the liar's two", f.svc.Stats().FailedAttempts)
	}
	_ = rc
}

func copyContent(t *testing.T, from, to *store.Store, root cid.Cid) {
	t.Helper()
	queue := []cid.Cid{root}
	for len(queue) > 0 {
		c := queue[0]
		queue = queue[1:]
		b, err := from.Block(c)
		if err != nil {
			t.Fatal(err)
		}
		if err := to.PutBlock(c, b); err != nil {
			t.Fatal(err)
		}
		links, _ := store.Links(c, b)
		queue = append(queue, links...)
	}
}

func firstChunk(t *testing.T, st *store.Store, rc cid.Cid) cid.Cid {
	t.Helper()
	r, err := st.Recipe(rc)
	if err != nil {
		t.Fatal(err)
	}
	ac := r.ArtifactCIDs()[0]
	b, _ := st.Block(ac)
	links, err := store.Links(ac, b)
	if err != nil || len(links) == 0 {
		t.Fatalf("artifact has no chunks: %v", err)
	}
	return links[1]
}

func corrupt(t *testing.T, st *store.Store, c cid.Cid) {
	t.Helper()
	k := c.String()
	p := filepath.Join(st.Dir(), "blocks", k[len(k)-2:], k)
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0xff
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// flakyHandler serves at most n blocks per stream honestly from st: a
// request it can serve whole ends with the end frame; otherwise, after n
// blocks (and what extra writes), the stream ends without it, as a
// provider that crashes mid-transfer would.
func flakyHandler(st *store.Store, n int, extra func(w *bufio.Writer)) network.StreamHandler {
	return func(s network.Stream) {
		r := bufio.NewReader(s)
		want, walk, err := transfer.ReadRequest(r)
		if err != nil {
			s.Reset()
			return
		}
		w := bufio.NewWriter(s)
		queue := want
		for sent := 0; len(queue) > 0 && sent < n; sent++ {
			c := queue[0]
			queue = queue[1:]
			b, err := st.Block(c)
			if err != nil {
				break
			}
			_ = transfer.WriteBlock(w, c, b)
			if walk {
				links, _ := store.Links(c, b)
				queue = append(queue, links...)
			}
		}
		if extra != nil {
			extra(w)
		} else if len(queue) == 0 {
			_ = transfer.WriteEnd(w)
		}
		_ = w.Flush()
		// End the stream without the end frame, as a provider that dies
		// does; Close rather than Reset so that what was sent arrives.
		s.Close()
	}
}

func TestFetchSurvivesProviderDisappearingMidTransfer(t *testing.T) {
	gone, honest, f := newNode(t, nil), newNode(t, nil), newSequentialNode(t)
	connect(t, f.h, gone.h)
	connect(t, f.h, honest.h)
	_, rc, _ := publishRecipe(t, honest)
	copyContent(t, honest.st, gone.st, rc)
	gone.h.SetStreamHandler(gone.svc.Protocol(), flakyHandler(gone.st, 3, nil))

	err := f.svc.Fetch(context.Background(), rc, gone.h.ID())
	if !errors.Is(err, transfer.ErrTruncated) {
		t.Fatalf("want a truncated transfer, got %v", err)
	}
	// The recipe and the manifest came whole; of the four chunks, the
	// three sent before the cut are kept.
	if miss, _ := f.st.Missing(rc); len(miss) != 1 {
		t.Fatalf("%d blocks missing after the cut, want 1", len(miss))
	}
	before := honest.svc.Stats().BytesServed
	if err := f.svc.Fetch(context.Background(), rc, honest.h.ID()); err != nil {
		t.Fatal(err)
	}
	if !f.st.Has(rc) {
		t.Fatal("content incomplete")
	}
	// The blocks verified before the cut were kept: the honest provider sent
	// only the last chunk (half a chunk long).
	if served := honest.svc.Stats().BytesServed - before; served != int64(store.ChunkSize/2) {
		t.Fatalf("honest provider served %d bytes, want only the missing chunk's %d", served, store.ChunkSize/2)
	}
}

func TestFetchRejectsUnrequestedBlocks(t *testing.T) {
	bad, f := newNode(t, nil), newNode(t, nil)
	connect(t, f.h, bad.h)
	_, rc, _ := publishRecipe(t, bad)
	stray := []byte("not asked for")
	bad.h.SetStreamHandler(bad.svc.Protocol(), flakyHandler(bad.st, 1, func(w *bufio.Writer) {
		_ = transfer.WriteBlock(w, recipes.CIDOf(cid.Raw, stray), stray)
	}))
	err := f.svc.Fetch(context.Background(), rc, bad.h.ID())
	if !errors.Is(err, transfer.ErrUnexpectedBlock) {
		t.Fatalf("want ErrUnexpectedBlock, got %v", err)
	}
}

func TestFetchUnknownContent(t *testing.T) {
	mr := transfertest.NewMemRouting()
	a, f := newNode(t, mr), newNode(t, mr)
	connect(t, f.h, a.h)
	c := recipes.CIDOf(cid.Raw, []byte("nobody has this"))
	if err := f.svc.Fetch(context.Background(), c, a.h.ID()); !errors.Is(err, transfer.ErrRemote) {
		t.Fatalf("want the provider's not found, got %v", err)
	}
	if err := f.svc.Fetch(context.Background(), recipes.CIDOf(cid.Raw, []byte("x"))); !errors.Is(err, transfer.ErrNoProvider) {
		t.Fatalf("want ErrNoProvider, got %v", err)
	}
}

func TestFetchDirectoryTree(t *testing.T) {
	a, f := newNode(t, nil), newNode(t, nil)
	connect(t, f.h, a.h)
	src := t.TempDir()
	_ = os.MkdirAll(filepath.Join(src, "d"), 0o755)
	_ = os.WriteFile(filepath.Join(src, "d", "count.txt"), []byte("9592\n"), 0o644)
	_ = os.WriteFile(filepath.Join(src, "big"), randBytes(2*store.ChunkSize+1), 0o644)
	tc, err := a.st.PutDir(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.svc.Fetch(context.Background(), tc, a.h.ID()); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "out")
	if err := f.st.GetDir(context.Background(), tc, out); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(out, "d", "count.txt")); string(b) != "9592\n" {
		t.Fatalf("count.txt = %q", b)
	}
}

func TestConcurrentFetchesShareOneTransfer(t *testing.T) {
	a, f := newNode(t, nil), newNode(t, nil)
	connect(t, f.h, a.h)
	_, rc, art := publishRecipe(t, a)
	errs := make(chan error, 4)
	for range 4 {
		go func() { errs <- f.svc.Fetch(context.Background(), rc, a.h.ID()) }()
	}
	for range 4 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if served := a.svc.Stats().BytesServed; served > int64(2*len(art)) {
		t.Fatalf("provider served %d bytes for a %d-byte artifact", served, len(art))
	}
}

func TestFetchAsksConnectedPeersWithoutProviderRecords(t *testing.T) {
	mr := transfertest.NewMemRouting()
	a, f := newNode(t, mr), newNodeAsking(t, mr, 4)
	connect(t, f.h, a.h)
	_, rc, _ := publishRecipe(t, a) // stored, never provided
	if err := f.svc.Fetch(context.Background(), rc); err != nil {
		t.Fatalf("fetch from a connected peer without a provider record: %v", err)
	}
	if !f.st.Has(rc) {
		t.Fatal("content incomplete")
	}
}

func TestMalformedRequestGetsAReason(t *testing.T) {
	a := newNode(t, nil)
	c := newHost(t)
	connect(t, c, a.h)
	s, err := c.NewStream(context.Background(), a.h.ID(), a.svc.Protocol())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	_, _ = s.Write([]byte{3, 0xff, 0xff, 0xff}) // a 3-byte "request" that is not CBOR
	_ = s.CloseWrite()
	f, _, err := transfer.ReadFrame(bufio.NewReader(s), nil)
	if err != nil || f.Type != transfer.FrameError || !strings.Contains(f.Msg, "protocol violation") {
		t.Fatalf("want an error frame explaining the violation, got %+v %v", f, err)
	}
	// The provider keeps serving.
	_, rc, _ := publishRecipe(t, a)
	f2 := newNode(t, nil)
	connect(t, f2.h, a.h)
	if err := f2.svc.Fetch(context.Background(), rc, a.h.ID()); err != nil {
		t.Fatal(err)
	}
}

func TestFetchSurvivesProviderHostDying(t *testing.T) {
	dying, honest, f := newNode(t, nil), newNode(t, nil), newNode(t, nil)
	connect(t, f.h, dying.h)
	connect(t, f.h, honest.h)
	_, rc, _ := publishRecipe(t, honest)
	copyContent(t, honest.st, dying.st, rc)
	sent := make(chan struct{})
	dying.h.SetStreamHandler(dying.svc.Protocol(), func(s network.Stream) {
		r := bufio.NewReader(s)
		want, _, err := transfer.ReadRequest(r)
		if err != nil {
			s.Reset()
			return
		}
		w := bufio.NewWriter(s)
		b, _ := dying.st.Block(want[0])
		_ = transfer.WriteBlock(w, want[0], b)
		_ = w.Flush()
		close(sent)
		// The whole node goes away: connections close under the stream.
		go dying.h.Close()
	})
	if err := f.svc.Fetch(context.Background(), rc, dying.h.ID(), honest.h.ID()); err != nil {
		t.Fatalf("fetch after the first provider died: %v", err)
	}
	<-sent
	if !f.st.Has(rc) || f.svc.Stats().FailedAttempts != 1 {
		t.Fatalf("content complete %v, failed attempts %d (want 1)", f.st.Has(rc), f.svc.Stats().FailedAttempts)
	}
}

func TestSharedFetchSurvivesOneWaiterGivingUp(t *testing.T) {
	a, f := newNode(t, nil), newNode(t, nil)
	connect(t, f.h, a.h)
	_, rc, _ := publishRecipe(t, a)
	ctx1, cancel1 := context.WithCancel(context.Background())
	first := make(chan error, 1)
	go func() { first <- f.svc.Fetch(ctx1, rc, a.h.ID()) }()
	second := make(chan error, 1)
	go func() { second <- f.svc.Fetch(context.Background(), rc, a.h.ID()) }()
	cancel1()
	if err := <-second; err != nil {
		t.Fatalf("the waiter that did not give up failed: %v", err)
	}
	if err := <-first; err != nil && !errors.Is(err, context.Canceled) {
		t.Fatalf("the waiter that gave up: %v", err)
	}
	if !f.st.Has(rc) {
		t.Fatal("content incomplete")
	}
}
