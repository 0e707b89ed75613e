package p2p_test

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/weftgrid/weft/p2p"
	"github.com/weftgrid/weft/p2p/grid"
	"github.com/weftgrid/weft/p2p/p2ptest"
)

// newIdentity creates a data dir with an identity and returns both.
func newIdentity(t *testing.T) (string, peer.ID) {
	t.Helper()
	dir := t.TempDir()
	k, err := p2p.LoadOrCreateIdentity(dir)
	if err != nil {
		t.Fatal(err)
	}
	id, err := peer.IDFromPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return dir, id
}

func writeGrid(t *testing.T, f grid.File) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), f.Name+".grid")
	if err := f.WriteFile(path); err != nil {
		t.Fatal(err)
	}
	return path
}

// cannotConnect asserts that from gets no connection to to.
func cannotConnect(t *testing.T, from, to *p2p.Node, who string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := from.Host().Connect(ctx, to.AddrInfo()); err == nil {
		// The dial side may complete its handshake before the other side's
		// gater closes the connection: require that it does not survive.
		p2ptest.WaitFor(t, 5*time.Second, func() error {
			if slices.Contains(to.ConnectedPeers(), from.ID()) {
				return fmt.Errorf("%s is connected to %s", who, to.ID().ShortString())
			}
			return nil
		})
	}
	if slices.Contains(to.ConnectedPeers(), from.ID()) {
		t.Fatalf("%s got a connection", who)
	}
}

func TestPrivateGridAdmitRevoke(t *testing.T) {
	fdir, fid := newIdentity(t)
	gf, err := grid.New("lab", fid)
	if err != nil {
		t.Fatal(err)
	}
	gpath := writeGrid(t, gf)
	founder := p2ptest.NewNode(t, p2ptest.DataDir(fdir), p2ptest.Grid(gpath))
	if !founder.IsFounder() || founder.GridName() != "lab" {
		t.Fatalf("founder: IsFounder %v, grid %q", founder.IsFounder(), founder.GridName())
	}

	m1dir, m1 := newIdentity(t)
	m2dir, m2 := newIdentity(t)
	for _, id := range []peer.ID{m1, m2} {
		if _, err := founder.Admit(id); err != nil {
			t.Fatal(err)
		}
	}
	a := p2ptest.NewNode(t, p2ptest.DataDir(m1dir), p2ptest.Grid(gpath), p2ptest.Bootstrap(founder))
	// The second member joins through the first, not the founder.
	b := p2ptest.NewNode(t, p2ptest.DataDir(m2dir), p2ptest.Grid(gpath), p2ptest.Bootstrap(a))
	members := &p2ptest.Cluster{Nodes: []*p2p.Node{founder, a, b}}
	members.WaitConverged(t, 20*time.Second)
	if l, ok := b.MemberList(); !ok || l.Version != 3 {
		t.Fatalf("member b holds list %+v (ok %v), want version 3", l, ok)
	}

	// An outsider on the public grid gets no connection.
	outsider := p2ptest.NewNode(t)
	cannotConnect(t, outsider, founder, "outsider without the grid file")
	// A node with the grid's ID but a wrong key gets none either.
	wrong := gf
	wrong.PSK = make([]byte, grid.PSKSize)
	wrong.Name = "lab-wrong"
	wdir, wid := newIdentity(t)
	if _, err := founder.Admit(wid); err != nil { // even admitted: the key is wrong
		t.Fatal(err)
	}
	wrongNode := p2ptest.NewNode(t, p2ptest.DataDir(wdir), p2ptest.Grid(writeGrid(t, wrong)))
	cannotConnect(t, wrongNode, founder, "member with a wrong key")
	// A holder of the right file who was never admitted is refused.
	stranger := p2ptest.NewNode(t, p2ptest.Grid(gpath))
	cannotConnect(t, stranger, founder, "holder of the file who was not admitted")
	cannotConnect(t, stranger, a, "holder of the file who was not admitted")
	if got := founder.AliveCount(); got != 3 {
		t.Fatalf("founder sees %d alive, want 3", got)
	}

	// Revoke b: everybody cuts it off and it cannot come back.
	if _, err := founder.Revoke(m2); err != nil {
		t.Fatal(err)
	}
	p2ptest.WaitFor(t, 20*time.Second, func() error {
		for _, n := range []*p2p.Node{founder, a} {
			if slices.Contains(n.ConnectedPeers(), m2) {
				return fmt.Errorf("%s still connected to the revoked member", n.ID().ShortString())
			}
			if st, _ := p2ptest.StateOf(n, m2); st != p2p.StateDead {
				return fmt.Errorf("%s sees the revoked member as %s", n.ID().ShortString(), st)
			}
		}
		return nil
	})
	cannotConnect(t, b, founder, "revoked member")
	cannotConnect(t, b, a, "revoked member")

	// Only the founder may change the list.
	if _, err := a.Admit(m2); err == nil {
		t.Fatal("a member that is not the founder admitted a peer")
	}
}

func TestGridFileRoundTrip(t *testing.T) {
	_, id := newIdentity(t)
	f, err := grid.New("community-1", id)
	if err != nil {
		t.Fatal(err)
	}
	g, err := grid.Parse(f.Encode())
	if err != nil {
		t.Fatal(err)
	}
	if g.Name != f.Name || g.ID != f.ID || g.Founder != f.Founder || string(g.PSK) != string(f.PSK) {
		t.Fatalf("round trip changed the file: %+v vs %+v", g, f)
	}
	if _, err := grid.New("bad name!", id); err == nil {
		t.Fatal("a bad grid name was accepted")
	}
}
