package grid

import (
	"crypto/ed25519"
	"fmt"
	"slices"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/weftgrid/weft/recipes/wire"
)

// MaxListSize bounds an encoded member list, in bytes.
const MaxListSize = 1 << 20

// MaxMembers bounds the number of members of a list.
const MaxMembers = 10000

// listDomain separates member-list signatures from every other signed type.
const listDomain = "weft/grid/members/v1"

// MemberList is the founder-signed set of peers admitted to a grid. The
// founder is always a member. Higher Version replaces lower.
type MemberList struct {
	// GridID is the grid the list belongs to.
	GridID string `cbor:"1,keyasint"`
	// Version increases with every admit or revoke.
	Version uint64 `cbor:"2,keyasint"`
	// Members are the admitted peers, sorted, without the founder.
	Members []peer.ID `cbor:"3,keyasint"`
	// Revoked are peers once admitted and then revoked, sorted (kept so a
	// revocation is visible and explained).
	Revoked []peer.ID `cbor:"4,keyasint,omitempty"`
	// IssuedUnixMs is when the founder signed the list.
	IssuedUnixMs int64 `cbor:"5,keyasint"`
}

type listWire struct {
	Body MemberList `cbor:"1,keyasint"`
	Sig  []byte     `cbor:"2,keyasint"`
}

var (
	encMode = wire.Enc
	decMode = wire.MustDecMode(wire.DecOptions(wire.Limits{Nesting: 8, Elements: 2 * MaxMembers, MapPairs: 64}))
)

// Contains reports whether p is admitted (the founder always is).
func (l MemberList) Contains(founder, p peer.ID) bool {
	if p == founder {
		return true
	}
	_, ok := slices.BinarySearch(l.Members, p)
	return ok
}

// Admit returns a copy of l, one version up, with p admitted.
func (l MemberList) Admit(p peer.ID, nowMs int64) MemberList {
	n := l.clone()
	n.Version++
	n.IssuedUnixMs = nowMs
	if i, ok := slices.BinarySearch(n.Members, p); !ok {
		n.Members = slices.Insert(n.Members, i, p)
	}
	if i, ok := slices.BinarySearch(n.Revoked, p); ok {
		n.Revoked = slices.Delete(n.Revoked, i, i+1)
	}
	return n
}

// Revoke returns a copy of l, one version up, with p revoked.
func (l MemberList) Revoke(p peer.ID, nowMs int64) MemberList {
	n := l.clone()
	n.Version++
	n.IssuedUnixMs = nowMs
	if i, ok := slices.BinarySearch(n.Members, p); ok {
		n.Members = slices.Delete(n.Members, i, i+1)
	}
	if i, ok := slices.BinarySearch(n.Revoked, p); !ok {
		n.Revoked = slices.Insert(n.Revoked, i, p)
	}
	return n
}

func (l MemberList) clone() MemberList {
	l.Members = slices.Clone(l.Members)
	l.Revoked = slices.Clone(l.Revoked)
	return l
}

func sortedUnique(ids []peer.ID) bool {
	for i := 1; i < len(ids); i++ {
		if ids[i-1] >= ids[i] {
			return false
		}
	}
	return true
}

// Sign encodes l signed by the founder's key.
func (l MemberList) Sign(founder crypto.PrivKey) ([]byte, error) {
	id, err := peer.IDFromPrivateKey(founder)
	if err != nil {
		return nil, err
	}
	if len(l.Members)+len(l.Revoked) > MaxMembers {
		return nil, fmt.Errorf("%w: more than %d members", ErrBadList, MaxMembers)
	}
	body, err := encMode.Marshal(l)
	if err != nil {
		return nil, err
	}
	sig, err := founder.Sign(listSigned(id, body))
	if err != nil {
		return nil, err
	}
	return encMode.Marshal(listWire{Body: l, Sig: sig})
}

func listSigned(founder peer.ID, body []byte) []byte {
	return wire.Message(listDomain, []byte(founder), body)
}

// DecodeMemberList decodes b and verifies it is the founder's list for f.
func DecodeMemberList(b []byte, f File) (MemberList, error) {
	if len(b) > MaxListSize {
		return MemberList{}, fmt.Errorf("%w: larger than %d bytes", ErrBadList, MaxListSize)
	}
	var w listWire
	if err := decMode.Unmarshal(b, &w); err != nil {
		return MemberList{}, fmt.Errorf("%w: %w", ErrBadList, err)
	}
	l := w.Body
	if l.GridID != f.ID {
		return MemberList{}, fmt.Errorf("%w: for grid %q, not %q", ErrBadList, l.GridID, f.ID)
	}
	if !sortedUnique(l.Members) || !sortedUnique(l.Revoked) {
		return MemberList{}, fmt.Errorf("%w: members not sorted and unique", ErrBadList)
	}
	for _, p := range append(slices.Clone(l.Members), l.Revoked...) {
		if err := p.Validate(); err != nil {
			return MemberList{}, fmt.Errorf("%w: member: %w", ErrBadList, err)
		}
	}
	body, err := encMode.Marshal(l)
	if err != nil {
		return MemberList{}, fmt.Errorf("%w: %w", ErrBadList, err)
	}
	pk, err := f.Founder.ExtractPublicKey()
	if err != nil {
		return MemberList{}, fmt.Errorf("%w: founder: %w", ErrBadSignature, err)
	}
	raw, err := pk.Raw()
	if err != nil || len(raw) != ed25519.PublicKeySize || len(w.Sig) != ed25519.SignatureSize ||
		!ed25519.Verify(raw, listSigned(f.Founder, body), w.Sig) {
		return MemberList{}, ErrBadSignature
	}
	return l, nil
}
