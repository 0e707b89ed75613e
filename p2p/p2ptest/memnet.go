package p2ptest

import (
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"
)

// MemNetwork is an in-memory network for memberlist, for simulations of
// large grids in one process (run inside testing/synctest so that time is
// virtual). Unlike memberlist's MockNetwork it is safe for concurrent use,
// delivers packets after a latency, drops them when the receiver is down or
// more than 65536 packets behind, and can take nodes down and up.
type MemNetwork struct {
	// Latency is the one-way delay of every packet and stream dial.
	Latency time.Duration

	mu    sync.Mutex
	nodes map[string]*MemTransport
	port  int
}

// NewMemNetwork returns a network with the given one-way latency.
func NewMemNetwork(latency time.Duration) *MemNetwork {
	return &MemNetwork{Latency: latency, nodes: map[string]*MemTransport{}}
}

// NewTransport adds a node named name and returns its transport.
func (n *MemNetwork) NewTransport(name string) *MemTransport {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.port++
	t := &MemTransport{
		net:      n,
		name:     name,
		addr:     &net.TCPAddr{IP: net.IPv4(10, byte(n.port>>16), byte(n.port>>8), byte(n.port)), Port: 7946},
		packetCh: make(chan *memberlist.Packet, 65536),
		streamCh: make(chan net.Conn, 64),
		done:     make(chan struct{}),
	}
	n.nodes[name] = t
	return t
}

// SetDown makes name unreachable (true) or reachable again (false), as a
// crash or a network partition of that node would.
func (n *MemNetwork) SetDown(name string, down bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if t, ok := n.nodes[name]; ok {
		t.down = down
	}
}

func (n *MemNetwork) peer(from *MemTransport, a memberlist.Address) (*MemTransport, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if from.down {
		return nil, fmt.Errorf("memnet: %s is down", from.name)
	}
	t, ok := n.nodes[a.Name]
	if !ok {
		for _, c := range n.nodes {
			if c.addr.String() == a.Addr {
				t, ok = c, true
				break
			}
		}
	}
	if !ok || t.down {
		return nil, fmt.Errorf("memnet: no route to %s", a.String())
	}
	return t, nil
}

// MemTransport is one node's memberlist.NodeAwareTransport on a MemNetwork.
type MemTransport struct {
	net      *MemNetwork
	name     string
	addr     *net.TCPAddr
	packetCh chan *memberlist.Packet
	streamCh chan net.Conn
	down     bool // guarded by net.mu
	done     chan struct{}
	once     sync.Once
}

var _ memberlist.NodeAwareTransport = (*MemTransport)(nil)

// Addr is the node's simulated address, host:port.
func (t *MemTransport) Addr() string { return t.addr.String() }

// FinalAdvertiseAddr implements memberlist.Transport.
func (t *MemTransport) FinalAdvertiseAddr(string, int) (net.IP, int, error) {
	return t.addr.IP, t.addr.Port, nil
}

// WriteTo implements memberlist.Transport.
func (t *MemTransport) WriteTo(b []byte, addr string) (time.Time, error) {
	return t.WriteToAddress(b, memberlist.Address{Addr: addr})
}

// WriteToAddress implements memberlist.NodeAwareTransport.
func (t *MemTransport) WriteToAddress(b []byte, a memberlist.Address) (time.Time, error) {
	now := time.Now()
	dest, err := t.net.peer(t, a)
	if err != nil {
		return now, nil // lost, like a datagram
	}
	p := &memberlist.Packet{Buf: append([]byte(nil), b...), From: t.addr}
	time.AfterFunc(t.net.Latency, func() {
		t.net.mu.Lock()
		down := dest.down
		t.net.mu.Unlock()
		if down {
			return
		}
		p.Timestamp = time.Now()
		select {
		case dest.packetCh <- p:
		case <-dest.done:
		default: // queue full: dropped
		}
	})
	return now, nil
}

// PacketCh implements memberlist.Transport.
func (t *MemTransport) PacketCh() <-chan *memberlist.Packet { return t.packetCh }

// DialTimeout implements memberlist.Transport.
func (t *MemTransport) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	return t.DialAddressTimeout(memberlist.Address{Addr: addr}, timeout)
}

// DialAddressTimeout implements memberlist.NodeAwareTransport.
func (t *MemTransport) DialAddressTimeout(a memberlist.Address, timeout time.Duration) (net.Conn, error) {
	dest, err := t.net.peer(t, a)
	if err != nil {
		time.Sleep(min(timeout, 2*t.net.Latency))
		return nil, err
	}
	time.Sleep(2 * t.net.Latency) // connection set-up round trip
	c1, c2 := net.Pipe()
	select {
	case dest.streamCh <- c1:
		return c2, nil
	case <-dest.done:
	case <-time.After(timeout):
	}
	c1.Close()
	c2.Close()
	return nil, fmt.Errorf("memnet: dial %s timed out", a.String())
}

// StreamCh implements memberlist.Transport.
func (t *MemTransport) StreamCh() <-chan net.Conn { return t.streamCh }

// Shutdown implements memberlist.Transport.
func (t *MemTransport) Shutdown() error {
	t.once.Do(func() { close(t.done) })
	return nil
}
