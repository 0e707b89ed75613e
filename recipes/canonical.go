package recipes

import (
	"bytes"
	"fmt"

	"github.com/fxamacker/cbor/v2"
	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multihash"

	"github.com/weftgrid/weft/recipes/wire"
)

var (
	encMode = mustEncMode()
	decMode = mustDecMode()
)

func mustEncMode() cbor.EncMode { return wire.Enc }

func mustDecMode() cbor.DecMode {
	o := wire.DecOptions(wire.Limits{Nesting: 32, Elements: 1 << 16, MapPairs: 1 << 16})
	o.IntDec = cbor.IntDecConvertSignedOrFail
	return wire.MustDecMode(o)
}

// Canonical returns the recipe's canonical encoding: deterministic CBOR
// (RFC 8949 core deterministic encoding) of the normalized recipe. It does
// not depend on the TOML's formatting, key order or comments.
func (r *Recipe) Canonical() []byte {
	b, err := encMode.Marshal(r)
	if err != nil {
		// Every field of a Recipe is encodable; this cannot happen.
		panic(fmt.Sprintf("recipes: canonical encoding: %v", err))
	}
	return b
}

// CID returns the recipe's content identifier: CIDv1, dag-cbor, sha2-256 over
// its canonical encoding (Canonical).
func (r *Recipe) CID() cid.Cid { return CIDOf(cid.DagCBOR, r.Canonical()) }

// CIDOf returns the CIDv1 with codec and a sha2-256 multihash of data.
func CIDOf(codec uint64, data []byte) cid.Cid {
	h, err := multihash.Sum(data, multihash.SHA2_256, -1)
	if err != nil {
		panic(err) // sha2-256 is always available
	}
	return cid.NewCidV1(codec, h)
}

// DecodeCanonical decodes a recipe from its canonical encoding (as stored
// and transferred by CID) and checks it: it must be valid and re-encode to
// exactly data.
func DecodeCanonical(data []byte) (*Recipe, error) {
	if len(data) > MaxRecipeBytes {
		return nil, ErrTooLarge
	}
	r := &Recipe{}
	if err := decMode.Unmarshal(data, r); err != nil {
		return nil, fmt.Errorf("%w: canonical encoding: %v", ErrInvalid, err)
	}
	var p problems
	r.normalize(&p)
	if err := p.errorFor("recipe", nil); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if !bytes.Equal(r.Canonical(), data) {
		return nil, fmt.Errorf("%w: not in canonical form", ErrInvalid)
	}
	return r, nil
}
