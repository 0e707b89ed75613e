package tunnels

import (
	"context"
	"crypto/rand"
	"strings"
	"testing"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/weftgrid/weft/p2p/tunnel"
	"github.com/weftgrid/weft/partition"
	"github.com/weftgrid/weft/scheduler"
)

type fakeMarket struct {
	requester peer.ID
	delegates []peer.ID
	hosted    scheduler.InstanceID
}

func (f fakeMarket) Instance(string) (scheduler.InstanceView, error) {
	return scheduler.InstanceView{}, scheduler.ErrNotFound
}
func (f fakeMarket) Instances() []scheduler.InstanceView { return nil }
func (f fakeMarket) HostedAccess(_ context.Context, id scheduler.InstanceID) (peer.ID, []peer.ID, bool) {
	if id != f.hosted {
		return "", nil, false
	}
	return f.requester, f.delegates, true
}

type fakePorts map[string]partition.InstanceStatus

func (f fakePorts) Get(id string) (partition.InstanceStatus, bool) { s, ok := f[id]; return s, ok }

func newID(t *testing.T) peer.ID {
	t.Helper()
	_, pub, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	id, err := peer.IDFromPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// TestTargetAuthorizesOnlyRequesterAndDelegatesToNamedPorts: a tunnel
// reaches only a port the instance's partition was given, by its name,
// for the instance's requester or a delegate; a stranger, another
// instance, a port number or a name the recipe does not have are refused.
func TestTargetAuthorizesOnlyRequesterAndDelegatesToNamedPorts(t *testing.T) {
	requester, guardian, stranger := newID(t), newID(t), newID(t)
	id := scheduler.InstanceID("inst")
	s := &Service{
		m:     fakeMarket{requester: requester, delegates: []peer.ID{guardian}, hosted: id},
		parts: fakePorts{"inst": {ID: "inst", Ports: map[string]int{"http": 20001, "admin": 20002}}, "other": {ID: "other", Ports: map[string]int{"http": 20010}}},
	}
	ctx := context.Background()
	for _, c := range []struct {
		from peer.ID
		req  tunnel.Request
		want string // address, or a fragment of the refusal
	}{
		{requester, tunnel.Request{Instance: "inst", Port: "http"}, "127.0.0.1:20001"},
		{guardian, tunnel.Request{Instance: "inst", Port: "admin"}, "127.0.0.1:20002"},
		{stranger, tunnel.Request{Instance: "inst", Port: "http"}, "only the instance's requester"},
		{requester, tunnel.Request{Instance: "other", Port: "http"}, "does not host"},
		{requester, tunnel.Request{Instance: "inst", Port: "22"}, "no port"},
		{requester, tunnel.Request{Instance: "inst", Port: "20003"}, "no port"},
		{requester, tunnel.Request{Instance: "inst", Port: "../http"}, "no port"},
		{requester, tunnel.Request{Instance: "inst"}, "several ports"},
	} {
		addr, err := s.target(ctx, c.from, c.req)
		got := addr
		if err != nil {
			got = err.Error()
		}
		if !strings.Contains(got, c.want) || (err == nil) != strings.HasPrefix(c.want, "127.") {
			t.Errorf("%+v from %s: got %q, want %q", c.req, c.from, got, c.want)
		}
	}
}
