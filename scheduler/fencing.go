package scheduler

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"slices"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// Wins reports whether contract a supersedes contract b for the same
// instance: a higher epoch wins; between two contracts of one epoch (a
// requester and a guardian that auctioned concurrently on two sides of a
// partition) the lower digest wins, so every node picks the same one.
// Both must have been opened (OpenContract).
func Wins(a, b *Contract) bool {
	if a.Epoch() != b.Epoch() {
		return a.Epoch() > b.Epoch()
	}
	return bytes.Compare(a.Digest(), b.Digest()) < 0
}

// ShouldStop reports whether the host self, running an instance under mine,
// must stop and destroy its copy because it saw seen: a contract for the
// same instance that wins over mine and names another provider. A host that
// stops bills nothing further under mine.
func ShouldStop(self peer.ID, mine, seen *Contract) bool {
	return mine.Instance() == seen.Instance() && seen.Provider() != self && Wins(seen, mine)
}

// rendezvousScore is the highest-random-weight score of a member for an instance.
func rendezvousScore(instance InstanceID, id peer.ID) []byte {
	h := sha256.New()
	h.Write([]byte("weft/market/guardian/v1\x00"))
	h.Write([]byte(instance))
	h.Write([]byte(id))
	return h.Sum(nil)
}

// Guardians picks k guardians for an instance from the live members by
// rendezvous hashing (highest score first), skipping the excluded peers
// (the requester). The same inputs give the same order on every node.
func Guardians(instance InstanceID, members []peer.ID, exclude []peer.ID, k int) []peer.ID {
	type scored struct {
		id    peer.ID
		score []byte
	}
	var s []scored
	for _, m := range members {
		if !slices.Contains(exclude, m) {
			s = append(s, scored{m, rendezvousScore(instance, m)})
		}
	}
	slices.SortFunc(s, func(a, b scored) int { return -bytes.Compare(a.score, b.score) })
	out := make([]peer.ID, 0, min(k, len(s)))
	for i := 0; i < len(s) && i < k; i++ {
		out = append(out, s[i].id)
	}
	return out
}

// ActingGuardian returns the guardian that re-places an instance: the
// first of the delegation's guardians that is alive, or "" if none is.
func ActingGuardian(guardians []peer.ID, alive func(peer.ID) bool) peer.ID {
	for _, g := range guardians {
		if alive(g) {
			return g
		}
	}
	return ""
}

// XORDistance is the Kademlia distance between an instance ID and a peer:
// sha256(instance bytes) XOR sha256(peer ID), as in the DHT keyspace.
func XORDistance(instance InstanceID, id peer.ID) [32]byte {
	a := sha256.Sum256(instance.Bytes())
	b := sha256.Sum256([]byte(id))
	var d [32]byte
	for i := range d {
		d[i] = a[i] ^ b[i]
	}
	return d
}

// BidderSet picks at most k candidates nearest to the instance in the DHT
// keyspace (XOR distance), so the number of bidders per placement stays
// bounded however large the grid is. k <= 0 returns all candidates.
func BidderSet(instance InstanceID, candidates []peer.ID, k int) []peer.ID {
	if k <= 0 || len(candidates) <= k {
		return candidates
	}
	type scored struct {
		id peer.ID
		d  [32]byte
	}
	s := make([]scored, len(candidates))
	for i, c := range candidates {
		s[i] = scored{c, XORDistance(instance, c)}
	}
	slices.SortFunc(s, func(a, b scored) int { return bytes.Compare(a.d[:], b.d[:]) })
	out := make([]peer.ID, k)
	for i := range out {
		out[i] = s[i].id
	}
	return out
}

// tieBreak orders equal bids deterministically but differently per auction,
// so ties do not always go to the same node.
func tieBreak(auctionID []byte, id peer.ID) uint64 {
	h := sha256.New()
	h.Write(auctionID)
	h.Write([]byte(id))
	return binary.BigEndian.Uint64(h.Sum(nil))
}

// ShouldReplace is the reconciler's decision for an instance whose host has
// been missing from the membership for lostFor: node self re-auctions it
// when the grace has passed and self is the requester, or the requester is
// not alive, the delegation allows self at now, and self is the first live
// guardian.
func ShouldReplace(self peer.ID, req *Request, lostFor time.Duration, alive func(peer.ID) bool, now time.Time) bool {
	if lostFor < req.Grace || req.State == StateDestroyed {
		return false
	}
	if req.Requester == self {
		return true
	}
	return !alive(req.Requester) && req.Delegation.Allows(self, now) && ActingGuardian(req.Delegation.Guardians, alive) == self
}
