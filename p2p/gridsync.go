package p2p

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/weftgrid/weft/p2p/grid"
	"github.com/weftgrid/weft/recipes/atomicfile"
)

// ErrNotFounder means a grid operation needs the founder's key.
var ErrNotFounder = errors.New("p2p: only the grid's founder can do this")

// ErrPublicGrid means a private-grid operation was asked of a public node.
var ErrPublicGrid = errors.New("p2p: not on a private grid")

func (n *Node) memberListPath() string {
	return filepath.Join(n.cfg.DataDir, "grid-"+n.grid.ID+"-members.cbor")
}

func (n *Node) isFounder() bool { return n.grid != nil && n.grid.Founder == n.id }

// loadMemberList loads the latest signed member list from the data dir; the
// founder starts version 1 (only itself) when it has none.
func (n *Node) loadMemberList() error {
	b, err := os.ReadFile(n.memberListPath())
	if err == nil {
		l, err := grid.DecodeMemberList(b, *n.grid)
		if err != nil {
			n.log.Warn("stored member list rejected; waiting for one from the grid", "err", err)
		} else {
			n.gater.list, n.gater.listB = l, b
			n.storedVersion = l.Version
			return nil
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("p2p: member list: %w", err)
	}
	if n.isFounder() {
		l := grid.MemberList{GridID: n.grid.ID, Version: 1, IssuedUnixMs: time.Now().UnixMilli()}
		return n.installList(l)
	}
	return nil
}

// installList signs (founder only), stores and enforces l.
func (n *Node) installList(l grid.MemberList) error {
	b, err := l.Sign(n.priv)
	if err != nil {
		return err
	}
	_, err = n.applyMemberList(b)
	return err
}

// applyMemberList verifies b; if it is newer than the current list it is
// stored, enforced (non-members are disconnected) and pushed to every
// connected peer. It reports whether b was newer.
func (n *Node) applyMemberList(b []byte) (bool, error) {
	l, err := grid.DecodeMemberList(b, *n.grid)
	if err != nil {
		return false, err
	}
	g := n.gater
	g.mu.Lock()
	if g.listB != nil && l.Version <= g.list.Version {
		g.mu.Unlock()
		return false, nil
	}
	g.list, g.listB = l, b
	g.mu.Unlock()
	n.storeMemberList()
	n.log.Info("grid member list installed", "version", l.Version, "members", len(l.Members)+1)
	if n.host != nil {
		for _, p := range n.host.Network().Peers() {
			if !g.allowed(p, false) {
				n.log.Info("disconnecting peer not on the member list", "member", p.String())
				_ = n.host.Network().ClosePeer(p)
				continue
			}
			n.pushMemberListTo(p)
		}
	}
	return true, nil
}

// storeMemberList writes the current list to the data dir. Lists are
// installed concurrently (every peer floods each version); the writes are
// serialised and each writes the list current at that moment, so that the
// file always ends with the newest version, never an older one or a mix.
func (n *Node) storeMemberList() {
	n.storeMu.Lock()
	defer n.storeMu.Unlock()
	n.gater.mu.RLock()
	b, v := n.gater.listB, n.gater.list.Version
	n.gater.mu.RUnlock()
	if b == nil || v <= n.storedVersion {
		return
	}
	if err := atomicfile.WriteFile(n.memberListPath(), b); err != nil {
		n.log.Warn("store member list", "err", err)
		return
	}
	n.storedVersion = v
}

func (n *Node) memberListProto() string { return string(n.prefix) + "/grid/members/1" }

func (n *Node) startGridSync() {
	n.host.SetStreamHandler(protocolID(n.memberListProto()), func(s network.Stream) {
		defer s.Close()
		_ = s.SetReadDeadline(time.Now().Add(10 * time.Second))
		b, err := io.ReadAll(io.LimitReader(s, grid.MaxListSize+1))
		if err != nil {
			s.Reset()
			return
		}
		if _, err := n.applyMemberList(b); err != nil {
			n.log.Warn("member list from peer rejected", "from", s.Conn().RemotePeer().String(), "err", err)
			n.penalise(s.Conn().RemotePeer(), "bad member list")
		}
	})
}

// pushMemberListTo sends the current signed list to p in the background.
func (n *Node) pushMemberListTo(p peer.ID) {
	n.gater.mu.RLock()
	b := n.gater.listB
	n.gater.mu.RUnlock()
	if b == nil || n.ctx.Err() != nil {
		return
	}
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		ctx, cancel := context.WithTimeout(n.ctx, 10*time.Second)
		defer cancel()
		s, err := n.host.NewStream(network.WithAllowLimitedConn(ctx, "grid"), p, protocolID(n.memberListProto()))
		if err != nil {
			return
		}
		_ = s.SetWriteDeadline(time.Now().Add(10 * time.Second))
		if _, err := s.Write(b); err != nil {
			s.Reset()
			return
		}
		s.Close()
	}()
}

// MemberList returns the grid's current signed member list (ok false on the
// public grid or before any list arrived).
func (n *Node) MemberList() (grid.MemberList, bool) {
	if n.grid == nil {
		return grid.MemberList{}, false
	}
	n.gater.mu.RLock()
	defer n.gater.mu.RUnlock()
	return n.gater.list, n.gater.listB != nil
}

// IsFounder reports whether this node founded its private grid.
func (n *Node) IsFounder() bool { return n.isFounder() }

// Admit adds p to the grid's member list (founder only) and spreads the new
// version to the grid.
func (n *Node) Admit(p peer.ID) (grid.MemberList, error) {
	return n.changeList(p, grid.MemberList.Admit)
}

// Revoke removes p from the grid's member list (founder only); every member
// that receives the new version disconnects p and refuses it from then on.
func (n *Node) Revoke(p peer.ID) (grid.MemberList, error) {
	if p == n.id {
		return grid.MemberList{}, fmt.Errorf("p2p: the founder cannot revoke itself")
	}
	return n.changeList(p, grid.MemberList.Revoke)
}

func (n *Node) changeList(p peer.ID, f func(grid.MemberList, peer.ID, int64) grid.MemberList) (grid.MemberList, error) {
	if n.grid == nil {
		return grid.MemberList{}, ErrPublicGrid
	}
	if !n.isFounder() {
		return grid.MemberList{}, ErrNotFounder
	}
	if err := p.Validate(); err != nil {
		return grid.MemberList{}, fmt.Errorf("p2p: peer ID: %w", err)
	}
	n.listMu.Lock()
	defer n.listMu.Unlock()
	cur, _ := n.MemberList()
	next := f(cur, p, time.Now().UnixMilli())
	if err := n.installList(next); err != nil {
		return grid.MemberList{}, err
	}
	return next, nil
}
