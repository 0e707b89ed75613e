package p2p

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/weftgrid/weft/p2p/grid"
)

// Lists arrive concurrently from several peers (every member floods each
// new version). The list stored on disk, which the node enforces after a
// restart, must be the newest one it installed, never an older version
// (in which a since-revoked member is still admitted) nor a torn write.
func TestStoredMemberListIsTheNewest(t *testing.T) {
	fk, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	fid, err := peer.IDFromPrivateKey(fk)
	if err != nil {
		t.Fatal(err)
	}
	gf, err := grid.New("race", fid)
	if err != nil {
		t.Fatal(err)
	}
	gpath := filepath.Join(t.TempDir(), "race.grid")
	if err := gf.WriteFile(gpath); err != nil {
		t.Fatal(err)
	}
	n := startTestNode(t, func(c *Config) { c.GridFile = gpath })
	_, other := testKey(t)

	l := grid.MemberList{GridID: gf.ID, Version: 1}
	const rounds, perRound = 30, 16
	for r := range rounds {
		signed := make([][]byte, perRound)
		for i := range signed {
			l = l.Admit(other, time.Now().UnixMilli())
			if i%2 == 1 {
				l = l.Revoke(other, time.Now().UnixMilli())
			}
			b, err := l.Sign(fk)
			if err != nil {
				t.Fatal(err)
			}
			signed[i] = b
		}
		var wg sync.WaitGroup
		for i := range signed {
			wg.Go(func() { _, _ = n.applyMemberList(signed[i]) })
		}
		wg.Wait()
		mem, _ := n.MemberList()
		b, err := os.ReadFile(n.memberListPath())
		if err != nil {
			t.Fatal(err)
		}
		disk, err := grid.DecodeMemberList(b, gf)
		if err != nil {
			t.Fatalf("round %d: stored list does not verify: %v", r, err)
		}
		if disk.Version != mem.Version {
			t.Fatalf("round %d: node enforces version %d but stored version %d", r, mem.Version, disk.Version)
		}
	}
}

// The gater checks a peer once, when its connection is secured; a revocation
// sweeps the connections registered at that moment. A connection secured
// just before the revocation and registered just after it escaped both and
// stayed open, with a revoked member connected for good.
func TestRevocationDuringHandshakeDisconnects(t *testing.T) {
	fdir := t.TempDir()
	fkey, err := LoadOrCreateIdentity(fdir)
	if err != nil {
		t.Fatal(err)
	}
	fid, _ := peer.IDFromPrivateKey(fkey)
	gf, err := grid.New("toctou", fid)
	if err != nil {
		t.Fatal(err)
	}
	gpath := filepath.Join(t.TempDir(), "toctou.grid")
	if err := gf.WriteFile(gpath); err != nil {
		t.Fatal(err)
	}
	founder := startTestNode(t, func(c *Config) { c.DataDir, c.GridFile = fdir, gpath })
	member := startTestNode(t, func(c *Config) { c.GridFile = gpath })
	if _, err := founder.Admit(member.ID()); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	hook := func(p peer.ID) {
		if p == member.ID() {
			once.Do(func() {
				if _, err := founder.Revoke(member.ID()); err != nil {
					t.Error(err)
				}
			})
		}
	}
	founder.gater.secured.Store(&hook)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = member.Host().Connect(ctx, founder.AddrInfo())
	if l, _ := founder.MemberList(); l.Contains(fid, member.ID()) {
		t.Fatal("member not revoked during the handshake")
	}
	waitFor(t, 5*time.Second, func() error {
		if slices.Contains(founder.ConnectedPeers(), member.ID()) {
			return fmt.Errorf("the revoked member is still connected to the founder")
		}
		return nil
	})
}
