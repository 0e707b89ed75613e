package p2p

import (
	"crypto/ed25519"
	"errors"
	"fmt"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/weftgrid/weft/recipes/wire"
)

// Advert is a node's capacity advert, carried signed in its membership
// metadata. Keys are small integers in CBOR so that it fits memberlist's
// 512-byte metadata limit together with the signature and addresses.
type Advert struct {
	// CPUMillis is the CPU offered, in thousandths of a core.
	CPUMillis int64 `cbor:"1,keyasint,omitempty" json:"cpu_millis"`
	// MemoryBytes is the memory offered, in bytes.
	MemoryBytes int64 `cbor:"2,keyasint,omitempty" json:"memory_bytes"`
	// DiskBytes is the disk offered, in bytes.
	DiskBytes int64 `cbor:"3,keyasint,omitempty" json:"disk_bytes"`
	// FreePartitions is the number of free partitions.
	FreePartitions int `cbor:"4,keyasint,omitempty" json:"free_partitions"`
	// Labels are free-form key=value labels (region, arch, ...).
	Labels map[string]string `cbor:"5,keyasint,omitempty" json:"labels"`
	// Version is the weft build the member runs (module version and
	// revision), as `weft version` prints it.
	Version string `cbor:"6,keyasint,omitempty" json:"version,omitempty"`
	// NoBids is set by a member that does not bid: a requester-only node
	// (no partitions) or a draining one. Auctioneers leave it out of their
	// bidder sets.
	NoBids bool `cbor:"7,keyasint,omitempty" json:"no_bids,omitempty"`
}

// MaxMetaSize is memberlist's limit on node metadata, in bytes.
const MaxMetaSize = 512

// advertDomain separates advert signatures from every other signed type.
const advertDomain = "weft/p2p/advert/v1"

// Errors of the advert codec.
var (
	// ErrBadAdvert means membership metadata failed to decode.
	ErrBadAdvert = errors.New("p2p: malformed advert")
	// ErrBadSignature means a signature did not verify.
	ErrBadSignature = errors.New("p2p: bad signature")
	// ErrTooLarge means an encoding exceeds its size limit.
	ErrTooLarge = errors.New("p2p: too large")
)

// Meta is the decoded, verified metadata of one member.
type Meta struct {
	// Seq orders a member's adverts; higher wins (unix milliseconds).
	Seq uint64
	// Advert is the capacity advert.
	Advert Advert
	// Addrs are the member's libp2p addresses, without /p2p/<id>.
	Addrs []ma.Multiaddr
	// Leaving is set in the last advert a member publishes before it
	// leaves gracefully, so that the others report "left", not "failed".
	Leaving bool
}

type metaBody struct {
	Seq     uint64   `cbor:"1,keyasint"`
	Advert  Advert   `cbor:"2,keyasint"`
	Addrs   [][]byte `cbor:"3,keyasint,omitempty"`
	Leaving bool     `cbor:"4,keyasint,omitempty"`
}

type metaWire struct {
	Body metaBody `cbor:"1,keyasint"`
	Sig  []byte   `cbor:"2,keyasint"`
}

var (
	encMode = wire.Enc
	decMode = wire.MustDecMode(wire.DecOptions(wire.Limits{Nesting: 16, Elements: 4096, MapPairs: 4096}))
)

func signedBytes(domain string, id peer.ID, body []byte) []byte {
	return wire.Message(domain, []byte(id), body)
}

// EncodeMeta signs m with priv and returns the membership metadata bytes.
// It fails with ErrTooLarge beyond MaxMetaSize: drop labels or addresses.
func EncodeMeta(priv crypto.PrivKey, m Meta) ([]byte, error) {
	id, err := peer.IDFromPrivateKey(priv)
	if err != nil {
		return nil, err
	}
	body := metaBody{Seq: m.Seq, Advert: m.Advert, Leaving: m.Leaving}
	for _, a := range m.Addrs {
		body.Addrs = append(body.Addrs, a.Bytes())
	}
	bb, err := encMode.Marshal(body)
	if err != nil {
		return nil, err
	}
	sig, err := priv.Sign(signedBytes(advertDomain, id, bb))
	if err != nil {
		return nil, err
	}
	out, err := encMode.Marshal(metaWire{Body: body, Sig: sig})
	if err != nil {
		return nil, err
	}
	if len(out) > MaxMetaSize {
		return nil, fmt.Errorf("%w: advert is %d bytes, limit %d", ErrTooLarge, len(out), MaxMetaSize)
	}
	return out, nil
}

// DecodeMeta decodes and verifies metadata published by id.
func DecodeMeta(id peer.ID, b []byte) (Meta, error) {
	if len(b) > MaxMetaSize {
		return Meta{}, fmt.Errorf("%w: %d bytes", ErrTooLarge, len(b))
	}
	var w metaWire
	if err := decMode.Unmarshal(b, &w); err != nil {
		return Meta{}, fmt.Errorf("%w: %w", ErrBadAdvert, err)
	}
	bb, err := encMode.Marshal(w.Body)
	if err != nil {
		return Meta{}, fmt.Errorf("%w: %w", ErrBadAdvert, err)
	}
	if err := verifyPeerSig(id, signedBytes(advertDomain, id, bb), w.Sig); err != nil {
		return Meta{}, err
	}
	m := Meta{Seq: w.Body.Seq, Advert: w.Body.Advert, Leaving: w.Body.Leaving}
	for _, ab := range w.Body.Addrs {
		a, err := ma.NewMultiaddrBytes(ab)
		if err != nil {
			return Meta{}, fmt.Errorf("%w: address: %w", ErrBadAdvert, err)
		}
		m.Addrs = append(m.Addrs, a)
	}
	return m, nil
}

// verifyPeerSig checks an Ed25519 signature by the key embedded in id.
func verifyPeerSig(id peer.ID, msg, sig []byte) error {
	pk, err := id.ExtractPublicKey()
	if err != nil {
		return fmt.Errorf("%w: %w", ErrBadSignature, err)
	}
	if pk.Type() != crypto.Ed25519 {
		return fmt.Errorf("%w: key type %s is not Ed25519", ErrBadSignature, pk.Type())
	}
	raw, err := pk.Raw()
	if err != nil || len(raw) != ed25519.PublicKeySize {
		return fmt.Errorf("%w: bad public key", ErrBadSignature)
	}
	if len(sig) != ed25519.SignatureSize || !ed25519.Verify(raw, msg, sig) {
		return ErrBadSignature
	}
	return nil
}
