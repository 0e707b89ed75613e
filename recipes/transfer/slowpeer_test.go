package transfer_test

import (
	"bufio"
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"

	"github.com/weftgrid/weft/recipes/transfer"
)

// TestSilentPeerCannotTakeEveryServingSlot: a peer that opens as many
// content streams as the provider serves at once and never sends its
// request (or never reads) holds only its own share: another peer's fetch
// from the same provider goes through meanwhile.
func TestSilentPeerCannotTakeEveryServingSlot(t *testing.T) {
	// The provider waits long for a request: the silent peer's streams
	// stay held for the whole test.
	a := newNodeWith(t, nil, func(c *transfer.Config) { c.IdleTimeout = time.Minute })
	_, rc, _ := publishRecipe(t, a)
	silent := newHost(t)
	connect(t, silent, a.h)
	ctx := context.Background()
	const extra = 8
	var busy atomic.Int32
	var held []network.Stream
	defer func() {
		for _, s := range held {
			_ = s.Reset()
		}
	}()
	for range transfer.DefaultConfig().MaxServing + extra {
		s, err := silent.NewStream(ctx, a.h.ID(), a.svc.Protocol())
		if err != nil {
			t.Fatal(err)
		}
		_, _ = s.Write([]byte{0x80}) // the start of a length, and nothing more
		held = append(held, s)
		go func() {
			// A refused stream gets "busy" at once; a served one hears
			// nothing until the provider's deadline.
			if f, _, err := transfer.ReadFrame(bufio.NewReader(s), nil); err == nil && f.Type == transfer.FrameError && strings.Contains(f.Msg, "busy") {
				busy.Add(1)
			}
		}()
	}
	// The provider refused some: the silent peer holds every slot it may
	// have (all of them, without a bound per peer).
	waitFor(t, "busy answers", func() bool { return busy.Load() >= extra })
	other := newNode(t, nil)
	connect(t, other.h, a.h)
	if err := other.svc.Fetch(ctx, rc, a.h.ID()); err != nil {
		t.Fatalf("a healthy peer's fetch while a silent one holds streams: %v", err)
	}
}
