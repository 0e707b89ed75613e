package ledger

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/fxamacker/cbor/v2"
	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	mh "github.com/multiformats/go-multihash"

	"github.com/weftgrid/weft/recipes/wire"
)

// entryDomain is the signature domain of entries (wire.Message): a
// signature made for any other weft message can never verify as an entry.
const entryDomain = "weft/ledger/entry/v1"

// EntryDomain is prepended to the bytes an entry's signature covers:
// entryDomain and the 0x00 of wire.Message (verification builds the
// message in place from the entry's bytes).
const EntryDomain = entryDomain + "\x00"

// MaxEntrySize bounds an encoded entry, in bytes.
const MaxEntrySize = 64 << 10

// Entry is one signed record of an author's log. Entries are immutable once
// signed; Decode and Signer.Sign fill the encoded bytes and the CID.
type Entry struct {
	// Author signed the entry; its Ed25519 public key is inside the peer ID.
	Author peer.ID
	// Seq is the entry's position in the author's log, from 1.
	Seq uint64
	// Prev is the CID of the author's entry Seq-1 (cid.Undef when Seq is 1).
	Prev cid.Cid
	// Kind says what Body holds.
	Kind Kind
	// TimeNanos is when the author wrote the entry, Unix nanoseconds.
	TimeNanos int64
	// Body is the canonical CBOR of the kind's body struct.
	Body []byte
	// Sig is the author's Ed25519 signature over EntryDomain || unsigned bytes.
	Sig []byte

	raw  []byte
	id   cid.Cid
	body any // decoded Body, set by Decode and NewEntry
}

// CID is the entry's content identifier: CIDv1, dag-cbor, sha2-256 over Bytes().
func (e *Entry) CID() cid.Cid { return e.id }

// Bytes is the entry's canonical signed encoding (do not modify).
func (e *Entry) Bytes() []byte { return e.raw }

// digest is the sha2-256 of Bytes(), taken from the CID.
func (e *Entry) digest() []byte {
	h := e.id.Hash()
	return h[len(h)-sha256.Size:]
}

// Time is TimeNanos as a time.Time.
func (e *Entry) Time() time.Time { return time.Unix(0, e.TimeNanos).UTC() }

// wireEntry is the encoded form: a CBOR array, fields in this order.
type wireEntry struct {
	_      struct{} `cbor:",toarray"`
	Author []byte
	Seq    uint64
	Prev   []byte
	Kind   uint8
	Time   int64
	Body   []byte
	Sig    []byte
}

type unsignedEntry struct {
	_      struct{} `cbor:",toarray"`
	Author []byte
	Seq    uint64
	Prev   []byte
	Kind   uint8
	Time   int64
	Body   []byte
}

var (
	encMode cbor.UserBufferEncMode
	decMode cbor.DecMode
)

func init() {
	// The shared encoding, with text as byte strings (a format fixed by
	// the entries' CIDs).
	eo := wire.EncOptions()
	eo.String = cbor.StringToByteString
	var err error
	if encMode, err = eo.UserBufferEncMode(); err != nil {
		panic(err)
	}
	decMode = wire.MustDecMode(ledgerDecOptions(wire.Limits{Nesting: 8, Elements: 4096, MapPairs: 64}))
}

// ledgerDecOptions are the shared strict decoding options with the
// ledger's: no tags, byte strings decoded into strings, invalid UTF-8
// passed through (entries are checked by their signatures).
func ledgerDecOptions(l wire.Limits) cbor.DecOptions {
	do := wire.DecOptions(l)
	do.TagsMd = cbor.TagsForbidden
	do.ByteStringToString = cbor.ByteStringToStringAllowed
	do.UTF8 = cbor.UTF8DecodeInvalid
	return do
}

// marshal encodes v canonically.
func marshal(v any) ([]byte, error) { return encMode.Marshal(v) }

// unmarshalCanonical decodes b into v and rejects any encoding that is not
// the canonical one (so each value has exactly one byte form and one CID).
func unmarshalCanonical(b []byte, v any) error {
	if err := decMode.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	again := reencodeBufs.Get().(*bytes.Buffer)
	defer reencodeBufs.Put(again)
	again.Reset()
	if err := encMode.MarshalToBuffer(v, again); err != nil {
		return fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if !bytes.Equal(again.Bytes(), b) {
		return fmt.Errorf("%w: not canonical CBOR", ErrMalformed)
	}
	return nil
}

// reencodeBufs holds the buffers of unmarshalCanonical's re-encoding.
var reencodeBufs = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// EncodeBody returns the canonical CBOR of a body struct (Contract, Receipt,
// Ack, Dispute, Grant or Checkpoint).
func EncodeBody(body any) ([]byte, error) { return marshal(body) }

// KindOf returns the kind of a body value.
func KindOf(body any) (Kind, error) {
	switch body.(type) {
	case Contract, *Contract:
		return KindContract, nil
	case Receipt, *Receipt:
		return KindReceipt, nil
	case Ack, *Ack:
		return KindAck, nil
	case Dispute, *Dispute:
		return KindDispute, nil
	case Grant, *Grant:
		return KindGrant, nil
	case Checkpoint, *Checkpoint:
		return KindCheckpoint, nil
	case End, *End:
		return KindEnd, nil
	}
	return 0, fmt.Errorf("%w: %T is not an entry body", ErrMalformed, body)
}

// DecodeBody decodes the entry's body into the struct of its kind and returns
// it by value (Contract, Receipt, Ack, Dispute, Grant or Checkpoint).
func (e *Entry) DecodeBody() (any, error) {
	var err error
	switch e.Kind {
	case KindContract:
		var v Contract
		err = unmarshalCanonical(e.Body, &v)
		return v, err
	case KindReceipt:
		var v Receipt
		err = unmarshalCanonical(e.Body, &v)
		return v, err
	case KindAck:
		var v Ack
		err = unmarshalCanonical(e.Body, &v)
		return v, err
	case KindDispute:
		var v Dispute
		err = unmarshalCanonical(e.Body, &v)
		return v, err
	case KindGrant:
		var v Grant
		err = unmarshalCanonical(e.Body, &v)
		return v, err
	case KindCheckpoint:
		var v Checkpoint
		err = unmarshalCanonical(e.Body, &v)
		return v, err
	case KindEnd:
		var v End
		if err = unmarshalCanonical(e.Body, &v); err == nil {
			err = v.validate()
		}
		return v, err
	}
	return nil, fmt.Errorf("%w: unknown kind %d", ErrMalformed, e.Kind)
}

// Value returns the decoded body (Contract, Receipt, Ack, Dispute, Grant or
// Checkpoint) of an entry made by Decode or NewEntry, decoding it otherwise.
func (e *Entry) Value() any {
	if e.body != nil {
		return e.body
	}
	v, _ := e.DecodeBody()
	return v
}

// Contract decodes a contract entry's body.
func (e *Entry) Contract() (Contract, error) {
	var v Contract
	if e.Kind != KindContract {
		return v, fmt.Errorf("%w: entry is a %s, not a contract", ErrInvalid, e.Kind)
	}
	return v, unmarshalCanonical(e.Body, &v)
}

// Receipt decodes a receipt entry's body.
func (e *Entry) Receipt() (Receipt, error) {
	var v Receipt
	if e.Kind != KindReceipt {
		return v, fmt.Errorf("%w: entry is a %s, not a receipt", ErrInvalid, e.Kind)
	}
	return v, unmarshalCanonical(e.Body, &v)
}

// unsignedBytes is what the signature covers, without the domain prefix.
func (e *Entry) unsignedBytes() ([]byte, error) {
	var prev []byte
	if e.Prev.Defined() {
		prev = e.Prev.Bytes()
	}
	return marshal(unsignedEntry{Author: []byte(e.Author), Seq: e.Seq, Prev: prev, Kind: uint8(e.Kind), Time: e.TimeNanos, Body: e.Body})
}

// signedMessage is EntryDomain || unsigned bytes. For a decoded entry it is
// cut from the canonical encoding (array header 0x87 → 0x86, signature
// dropped), which is exactly what unsignedBytes would re-encode.
func (e *Entry) signedMessage() ([]byte, error) {
	return e.appendSignedMessage(nil)
}

// appendSignedMessage appends signedMessage to buf.
func (e *Entry) appendSignedMessage(buf []byte) ([]byte, error) {
	const sigEnc = 2 + ed25519.SignatureSize // 0x58 0x40 + 64 bytes
	if n := len(e.raw); n > 1+sigEnc && e.raw[0] == 0x87 && e.raw[n-sigEnc] == 0x58 && e.raw[n-sigEnc+1] == ed25519.SignatureSize {
		buf = append(buf, EntryDomain...)
		buf = append(buf, 0x86)
		return append(buf, e.raw[1:n-sigEnc]...), nil
	}
	u, err := e.unsignedBytes()
	if err != nil {
		return nil, err
	}
	buf = append(buf, EntryDomain...)
	return append(buf, u...), nil
}

// CIDOf returns the CID of encoded entry bytes: CIDv1, dag-cbor, sha2-256.
func CIDOf(b []byte) cid.Cid {
	sum := sha256.Sum256(b)
	h, _ := mh.Encode(sum[:], mh.SHA2_256)
	return cid.NewCidV1(cid.DagCBOR, h)
}

// Decode parses an encoded entry: size bound, canonical CBOR, field rules
// (Ed25519 author, Seq ≥ 1, Prev present exactly when Seq > 1, known kind,
// 64-byte signature) and a body that decodes for its kind. It does not check
// the signature; call Verify.
//
// The entry keeps b (and parts of it): the caller must not modify b after.
func Decode(b []byte) (*Entry, error) {
	return decodeAs(b, cid.Undef)
}

// decodeAs is Decode for bytes whose CID the caller already computed
// (cid.Undef: compute it).
func decodeAs(b []byte, id cid.Cid) (*Entry, error) {
	if len(b) > MaxEntrySize {
		return nil, fmt.Errorf("%w: entry of %d bytes (max %d)", ErrTooLarge, len(b), MaxEntrySize)
	}
	w, err := decodeWire(b)
	if err != nil {
		return nil, err
	}
	e := &Entry{Author: peer.ID(w.Author), Seq: w.Seq, Kind: Kind(w.Kind), TimeNanos: w.Time, Body: w.Body, Sig: w.Sig}
	if _, err := pubKeyOf(e.Author); err != nil {
		return nil, err
	}
	if e.Seq == 0 {
		return nil, fmt.Errorf("%w: seq 0", ErrMalformed)
	}
	if (e.Seq == 1) != (len(w.Prev) == 0) {
		return nil, fmt.Errorf("%w: prev must be set exactly when seq > 1", ErrMalformed)
	}
	if len(w.Prev) > 0 {
		c, err := cid.Cast(w.Prev)
		if err != nil {
			return nil, fmt.Errorf("%w: prev: %w", ErrMalformed, err)
		}
		if !bytes.Equal(c.Bytes(), w.Prev) {
			return nil, fmt.Errorf("%w: prev: not a canonical CID", ErrMalformed)
		}
		e.Prev = c
	}
	if !e.Kind.valid() {
		return nil, fmt.Errorf("%w: unknown kind %d", ErrMalformed, w.Kind)
	}
	if len(e.Sig) != ed25519.SignatureSize {
		return nil, fmt.Errorf("%w: signature of %d bytes", ErrMalformed, len(e.Sig))
	}
	body, err := e.DecodeBody()
	if err != nil {
		return nil, fmt.Errorf("%s body: %w", e.Kind, err)
	}
	e.body = body
	e.raw = b
	if !id.Defined() {
		id = CIDOf(b)
	}
	e.id = id
	return e, nil
}

// DecodeVerified is Decode followed by Verify.
func DecodeVerified(b []byte) (*Entry, error) {
	e, err := Decode(b)
	if err != nil {
		return nil, err
	}
	return e, e.Verify()
}

// Verify checks the signature against the author's public key, under the
// ledger's signature rule (see verifyOpts).
func (e *Entry) Verify() error {
	msg, err := e.signedMessage()
	if err != nil {
		return fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	ok, err := verifySig(e.Author, msg, e.Sig)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("%w: entry %s by %s", ErrBadSignature, e.id, e.Author)
	}
	return nil
}

// pubKeyOf extracts the raw Ed25519 public key inlined in an identity-hash
// peer ID. Nothing is cached here: entries under made-up authors must not
// grow memory (verified authors' expanded keys are cached, bounded, in
// expandedKeys).
func pubKeyOf(id peer.ID) (ed25519.PublicKey, error) {
	// identity multihash (0x00), length 36, protobuf {KeyType=1 (Ed25519), Data: 32 bytes}.
	if len(id) != 38 || id[0] != 0x00 || id[1] != 36 || id[2] != 0x08 || id[3] != 0x01 || id[4] != 0x12 || id[5] != 0x20 {
		return nil, fmt.Errorf("%w: %q", ErrBadAuthor, id)
	}
	return ed25519.PublicKey(id[6:]), nil
}

// Signer signs entries with a node's Ed25519 key.
type Signer struct {
	id  peer.ID
	key ed25519.PrivateKey
}

// NewSigner returns a signer for a libp2p Ed25519 private key.
func NewSigner(priv crypto.PrivKey) (*Signer, error) {
	if priv.Type() != crypto.Ed25519 {
		return nil, fmt.Errorf("%w: key type %s", ErrBadAuthor, priv.Type())
	}
	raw, err := priv.Raw()
	if err != nil {
		return nil, err
	}
	id, err := peer.IDFromPrivateKey(priv)
	if err != nil {
		return nil, err
	}
	if len(raw) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("%w: raw key of %d bytes", ErrBadAuthor, len(raw))
	}
	return &Signer{id: id, key: ed25519.PrivateKey(raw)}, nil
}

// ID is the signer's peer ID.
func (s *Signer) ID() peer.ID { return s.id }

// Sign sets e.Author, signs e and fills its encoded bytes and CID.
func (s *Signer) Sign(e *Entry) error {
	e.Author = s.id
	if !e.Kind.valid() {
		return fmt.Errorf("%w: unknown kind %d", ErrMalformed, e.Kind)
	}
	if (e.Seq == 1) == e.Prev.Defined() || e.Seq == 0 {
		return fmt.Errorf("%w: prev must be set exactly when seq > 1", ErrMalformed)
	}
	msg, err := e.unsignedBytes()
	if err != nil {
		return err
	}
	e.Sig = wire.Sign(s.key, entryDomain, msg)
	var prev []byte
	if e.Prev.Defined() {
		prev = e.Prev.Bytes()
	}
	raw, err := marshal(wireEntry{Author: []byte(e.Author), Seq: e.Seq, Prev: prev, Kind: uint8(e.Kind), Time: e.TimeNanos, Body: e.Body, Sig: e.Sig})
	if err != nil {
		return err
	}
	if len(raw) > MaxEntrySize {
		return fmt.Errorf("%w: entry of %d bytes (max %d)", ErrTooLarge, len(raw), MaxEntrySize)
	}
	if e.body == nil {
		if e.body, err = e.DecodeBody(); err != nil {
			return err
		}
	}
	e.raw = raw
	e.id = CIDOf(raw)
	return nil
}

// NewEntry builds an unsigned entry for body at (seq, prev, now); sign it
// with a Signer. Ledger.Append does all of this for the node's own log.
func NewEntry(seq uint64, prev cid.Cid, now time.Time, body any) (*Entry, error) {
	k, err := KindOf(body)
	if err != nil {
		return nil, err
	}
	b, err := EncodeBody(body)
	if err != nil {
		return nil, err
	}
	e := &Entry{Seq: seq, Prev: prev, Kind: k, TimeNanos: now.UnixNano(), Body: b}
	if e.body, err = e.DecodeBody(); err != nil {
		return nil, err
	}
	return e, nil
}

// entryJSON is the JSON view of an entry (API and dashboard).
type entryJSON struct {
	CID    string    `json:"cid"`
	Author string    `json:"author"`
	Seq    uint64    `json:"seq"`
	Prev   string    `json:"prev,omitempty"`
	Kind   string    `json:"kind"`
	Time   time.Time `json:"time"`
	Body   any       `json:"body"`
}

// MarshalJSON renders the entry with its decoded body (read-only view; the
// signed form is Bytes).
func (e *Entry) MarshalJSON() ([]byte, error) {
	j := entryJSON{CID: e.id.String(), Author: e.Author.String(), Seq: e.Seq, Kind: e.Kind.String(), Time: e.Time(), Body: e.Value()}
	if e.Prev.Defined() {
		j.Prev = e.Prev.String()
	}
	return json.Marshal(j)
}
