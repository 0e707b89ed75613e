// Package wire is what every weft wire and file format shares: one CBOR
// encoding — RFC 8949 Core Deterministic Encoding, so that equal values
// have equal bytes, and hashes and signatures over them are stable — with
// strict decoding options, and one form of domain-separated Ed25519
// signature.
//
// A signature covers domain || 0x00 || parts..., where domain names the
// signed type and its version ("weft/market/bid/v1"), so that a signature
// over one type can never pass for another.
//
// Usage:
//
//	b, err := wire.Enc.Marshal(v)
//	dec := wire.MustDecMode(wire.DecOptions(wire.Limits{Nesting: 8, Elements: 512, MapPairs: 64}))
//	sig := wire.Sign(priv, "weft/market/bid/v1", body)
//	ok := wire.Verify(pub, sig, "weft/market/bid/v1", body)
//
// Every package of the module may import wire; wire imports none of them.
//
// Concurrency: everything here is safe for concurrent use.
package wire

import (
	"crypto/ed25519"

	"github.com/fxamacker/cbor/v2"
)

// Enc is the one CBOR encoding mode of weft's wire and file formats (Core
// Deterministic Encoding). The ledger's entries encode text as byte
// strings on top of it (EncOptions), a format fixed by their CIDs.
var Enc = MustEncMode(EncOptions())

// EncOptions returns Enc's options, for a format that must extend them.
func EncOptions() cbor.EncOptions { return cbor.CoreDetEncOptions() }

// MustEncMode builds an encoding mode from options known to be valid.
func MustEncMode(o cbor.EncOptions) cbor.EncMode {
	m, err := o.EncMode()
	if err != nil {
		panic(err)
	}
	return m
}

// Limits bounds what a decoder accepts: nesting depth, elements of one
// array, pairs of one map.
type Limits struct {
	Nesting, Elements, MapPairs int
}

// DecOptions returns the strict decoding options every weft format starts
// from, under limits: duplicate map keys, indefinite lengths and unknown
// fields are errors. A format adds what is particular to it (tags, integer
// or string conversions) to the result.
func DecOptions(l Limits) cbor.DecOptions {
	return cbor.DecOptions{
		MaxNestedLevels:   l.Nesting,
		MaxArrayElements:  l.Elements,
		MaxMapPairs:       l.MapPairs,
		DupMapKey:         cbor.DupMapKeyEnforcedAPF,
		IndefLength:       cbor.IndefLengthForbidden,
		ExtraReturnErrors: cbor.ExtraDecErrorUnknownField,
	}
}

// MustDecMode builds a decoding mode from options known to be valid.
func MustDecMode(o cbor.DecOptions) cbor.DecMode {
	m, err := o.DecMode()
	if err != nil {
		panic(err)
	}
	return m
}

// Message returns the bytes a signature of the given domain covers:
// domain || 0x00 || parts....
func Message(domain string, parts ...[]byte) []byte {
	n := len(domain) + 1
	for _, p := range parts {
		n += len(p)
	}
	b := make([]byte, 0, n)
	b = append(b, domain...)
	b = append(b, 0)
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}

// Sign signs Message(domain, parts...) with priv.
func Sign(priv ed25519.PrivateKey, domain string, parts ...[]byte) []byte {
	return ed25519.Sign(priv, Message(domain, parts...))
}

// Verify reports whether sig is pub's signature over Message(domain,
// parts...).
func Verify(pub ed25519.PublicKey, sig []byte, domain string, parts ...[]byte) bool {
	return len(pub) == ed25519.PublicKeySize && len(sig) == ed25519.SignatureSize &&
		ed25519.Verify(pub, Message(domain, parts...), sig)
}
