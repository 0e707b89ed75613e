package ledger

import (
	"context"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// stalledPeer opens sync streams to a peer that accepts them and then says
// nothing (a hung or malicious node).
type stalledPeer struct {
	id     peer.ID
	mu     sync.Mutex
	far    []net.Conn
	opened chan struct{}
}

func (s *stalledPeer) Peers() []peer.ID { return []peer.ID{s.id} }

func (s *stalledPeer) OpenSync(ctx context.Context, p peer.ID) (io.ReadWriteCloser, error) {
	a, b := net.Pipe()
	s.mu.Lock()
	s.far = append(s.far, b)
	s.mu.Unlock()
	select {
	case s.opened <- struct{}{}:
	default:
	}
	return a, nil
}

func (s *stalledPeer) closeAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.far {
		c.Close()
	}
}

// Close must not wait for an exchange with a stalled peer to time out (2
// minutes by default): the exchange's stream did not watch the context, so
// Close blocked in wg.Wait until the stream's deadline.
func TestCloseDoesNotWaitForStalledSync(t *testing.T) {
	l, err := Open(Config{Signer: deterministicSigner(t, 80), Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	sp := &stalledPeer{id: deterministicSigner(t, 81).ID(), opened: make(chan struct{}, 1)}
	t.Cleanup(sp.closeAll) // unblocks a leaked exchange, so the test binary can end
	l.StartSync(context.Background(), sp, sp, SyncConfig{Interval: time.Hour, Timeout: time.Hour})
	l.TriggerSync(sp.id)
	<-sp.opened
	closed := make(chan error, 1)
	go func() { closed <- l.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Close still blocked on an exchange with a stalled peer")
	}
}
