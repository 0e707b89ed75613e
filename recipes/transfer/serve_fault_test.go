//go:build linux

package transfer_test

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ipfs/go-cid"

	"github.com/weftgrid/weft/recipes"
	"github.com/weftgrid/weft/recipes/store"
	"github.com/weftgrid/weft/recipes/transfer"
)

func mapped(path string) bool {
	b, err := os.ReadFile("/proc/self/maps")
	return err == nil && strings.Contains(string(b), path)
}

// A block truncated behind the store's back while the provider streams it
// from its mapping faults; the provider fails that stream, and must still
// unmap the block.
func TestServeUnmapsABlockThatFaults(t *testing.T) {
	a := newNode(t, nil)
	data := randBytes(store.MaxBlockSize)
	c := recipes.CIDOf(cid.Raw, data)
	if err := a.st.PutBlock(c, data); err != nil {
		t.Fatal(err)
	}
	k := c.String()
	path := filepath.Join(a.st.Dir(), "blocks", k[len(k)-2:], k)

	h := newHost(t)
	connect(t, h, a.h)
	s, err := h.NewStream(context.Background(), a.h.ID(), a.svc.Protocol())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Reset()
	if err := transfer.WriteRequest(s, []cid.Cid{c}, false); err != nil {
		t.Fatal(err)
	}
	_ = s.CloseWrite()
	// Not reading: the provider fills the stream's window and waits in the
	// middle of the block, with the block mapped.
	waitFor(t, "the provider to map the block", func() bool { return mapped(path) })
	if err := os.Truncate(path, 0); err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, s) // the provider faults and resets the stream
	waitFor(t, "the provider to unmap the block", func() bool { return !mapped(path) })
}
