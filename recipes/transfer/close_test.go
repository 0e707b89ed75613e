package transfer_test

import (
	"bufio"
	"context"
	"errors"
	"testing"

	"github.com/libp2p/go-libp2p/core/network"

	"github.com/weftgrid/weft/recipes/transfer"
)

// Closing the service under a running Fetch ends it with ErrClosed: the
// caller's context was not cancelled, so context.Canceled would send it
// looking for the wrong reason.
func TestCloseDuringFetchSaysClosed(t *testing.T) {
	a, f := newNode(t, nil), newNode(t, nil)
	connect(t, f.h, a.h)
	_, rc, _ := publishRecipe(t, a)
	asked, release := make(chan struct{}), make(chan struct{})
	defer close(release)
	a.h.SetStreamHandler(a.svc.Protocol(), func(s network.Stream) {
		if _, _, err := transfer.ReadRequest(bufio.NewReader(s)); err == nil {
			close(asked)
		}
		// Says nothing more: the fetch waits until the service closes.
		<-release
		s.Reset()
	})
	done := make(chan error, 1)
	go func() { done <- f.svc.Fetch(context.Background(), rc, a.h.ID()) }()
	<-asked
	if err := f.svc.Close(); err != nil {
		t.Fatal(err)
	}
	err := <-done
	if !errors.Is(err, transfer.ErrClosed) || errors.Is(err, context.Canceled) {
		t.Fatalf("Fetch interrupted by Close: %v (want ErrClosed)", err)
	}
}
