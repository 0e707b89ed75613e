package transfer

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multihash"
)

// A request for a CID whose sha2-256 digest is truncated names no block a
// store can hold: the provider refuses it as it refuses other hashes.
func TestReadRequestRefusesTruncatedSHA256(t *testing.T) {
	d := sha256.Sum256([]byte("x"))
	h, err := multihash.Encode(d[:20], multihash.SHA2_256)
	if err != nil {
		t.Fatal(err)
	}
	c := cid.NewCidV1(cid.Raw, h)
	b, err := reqEnc.Marshal(&Request{V: 1, Want: [][]byte{c.Bytes()}})
	if err != nil {
		t.Fatal(err)
	}
	in := append(binary.AppendUvarint(nil, uint64(len(b))), b...)
	if want, _, err := ReadRequest(bufio.NewReader(bytes.NewReader(in))); !errors.Is(err, ErrProtocol) {
		t.Fatalf("ReadRequest = %v, %v; want ErrProtocol", want, err)
	}
}
