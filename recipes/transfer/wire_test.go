package transfer

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"errors"
	"hash"
	"io"
	"testing"

	"github.com/ipfs/go-cid"

	"github.com/weftgrid/weft/recipes"
	"github.com/weftgrid/weft/recipes/store"
)

func TestWireRoundTrip(t *testing.T) {
	c1 := recipes.CIDOf(cid.Raw, []byte("a"))
	c2 := recipes.CIDOf(cid.DagCBOR, []byte("b"))
	var buf bytes.Buffer
	if err := WriteRequest(&buf, []cid.Cid{c1, c2}, true); err != nil {
		t.Fatal(err)
	}
	want, walk, err := ReadRequest(bufio.NewReader(&buf))
	if err != nil || !walk || len(want) != 2 || want[0] != c1 || want[1] != c2 {
		t.Fatalf("request round trip: %v %v %v", want, walk, err)
	}
	w := bufio.NewWriter(&buf)
	_ = WriteBlock(w, c1, []byte("a"))
	_ = WriteError(w, "nope")
	_ = WriteEnd(w)
	_ = w.Flush()
	r := bufio.NewReader(&buf)
	f, _, err := ReadFrame(r, nil)
	if err != nil || f.Type != FrameBlock || f.CID != c1 || string(f.Data) != "a" {
		t.Fatalf("block frame: %+v %v", f, err)
	}
	if f, _, err = ReadFrame(r, nil); err != nil || f.Type != FrameError || f.Msg != "nope" {
		t.Fatalf("error frame: %+v %v", f, err)
	}
	if f, _, err = ReadFrame(r, nil); err != nil || f.Type != FrameEnd {
		t.Fatalf("end frame: %+v %v", f, err)
	}
	if _, _, err = ReadFrame(r, nil); !errors.Is(err, ErrTruncated) {
		t.Fatalf("after end: %v", err)
	}
}

func TestWireRejects(t *testing.T) {
	for name, in := range map[string][]byte{
		"unknown frame":  {0x7f},
		"huge block":     append(append([]byte{FrameBlock, 36}, recipes.CIDOf(cid.Raw, nil).Bytes()...), 0xff, 0xff, 0xff, 0xff, 0x0f),
		"huge error":     {FrameError, 0xff, 0xff, 0x03},
		"zero-length id": {FrameBlock, 0},
	} {
		if _, _, err := ReadFrame(bufio.NewReader(bytes.NewReader(in)), nil); !errors.Is(err, ErrProtocol) {
			t.Errorf("%s: %v", name, err)
		}
	}
	for name, in := range map[string][]byte{
		"empty":      {0},
		"oversized":  {0xff, 0xff, 0xff, 0x7f},
		"not cbor":   {2, 0xff, 0xff},
		"wants none": append([]byte{byte(len(mustReq(t, nil)))}, mustReq(t, nil)...),
	} {
		if _, _, err := ReadRequest(bufio.NewReader(bytes.NewReader(in))); err == nil {
			t.Errorf("%s accepted", name)
		}
	}
}

func mustReq(t *testing.T, want [][]byte) []byte {
	b, err := reqEnc.Marshal(&Request{V: 1, Want: want})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func FuzzReadFrame(f *testing.F) {
	c := recipes.CIDOf(cid.Raw, []byte("x"))
	var buf bytes.Buffer
	w := bufio.NewWriter(&buf)
	_ = WriteBlock(w, c, []byte("x"))
	_ = WriteError(w, "not found")
	_ = WriteEnd(w)
	_ = w.Flush()
	f.Add(buf.Bytes())
	f.Add([]byte{FrameEnd})
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bufio.NewReader(bytes.NewReader(data))
		var b []byte
		for i := 0; i < 64; i++ {
			var fr Frame
			var err error
			fr, b, err = ReadFrame(r, b)
			if err != nil {
				if !errors.Is(err, ErrProtocol) && !errors.Is(err, ErrTruncated) {
					t.Fatalf("unclassified error: %v", err)
				}
				return
			}
			if fr.Type == FrameBlock && len(fr.Data) > 8<<20 {
				t.Fatal("block over the limit accepted")
			}
		}
	})
}

func FuzzReadRequest(f *testing.F) {
	var buf bytes.Buffer
	_ = WriteRequest(&buf, []cid.Cid{recipes.CIDOf(cid.Raw, []byte("x")), recipes.CIDOf(cid.DagCBOR, []byte("y"))}, true)
	f.Add(buf.Bytes())
	f.Fuzz(func(t *testing.T, data []byte) {
		want, walk, err := ReadRequest(bufio.NewReader(bytes.NewReader(data)))
		if err != nil {
			return
		}
		var out bytes.Buffer
		if err := WriteRequest(&out, want, walk); err != nil {
			t.Fatalf("accepted request cannot be re-encoded: %v", err)
		}
	})
}

// FuzzReadVerified fuzzes the fetcher's decoder: whatever the bytes, a block
// it accepts hashes to its CID, and every error is classified.
func FuzzReadVerified(f *testing.F) {
	good := []byte("chunk")
	c := recipes.CIDOf(cid.Raw, good)
	var buf bytes.Buffer
	w := bufio.NewWriter(&buf)
	_ = WriteBlock(w, c, good)
	_ = WriteBlock(w, c, []byte("chunX")) // a lie
	_ = WriteBlock(w, recipes.CIDOf(cid.DagCBOR, good), good)
	_ = WriteError(w, "busy")
	_ = WriteEnd(w)
	_ = w.Flush()
	f.Add(buf.Bytes())
	f.Add(buf.Bytes()[:buf.Len()/2])
	f.Fuzz(func(t *testing.T, in []byte) {
		r := bufio.NewReader(bytes.NewReader(in))
		hs := sha256.New()
		var b []byte
		var got bytes.Buffer // what the fetcher would write into the store
		begin := func(FrameHeader) (io.Writer, bool, error) {
			got.Reset()
			return &got, true, nil
		}
		for range 64 {
			fh, data, verr, err := readVerified(r, b[:0], hs, begin)
			b = data
			if err != nil {
				if !errors.Is(err, ErrProtocol) && !errors.Is(err, ErrTruncated) {
					t.Fatalf("unclassified error: %v", err)
				}
				return
			}
			if fh.Type != FrameBlock {
				continue
			}
			if verr != nil {
				if !errors.Is(verr, store.ErrHashMismatch) && !errors.Is(verr, store.ErrBadCID) {
					t.Fatalf("unclassified verification error: %v", verr)
				}
				return
			}
			if err := store.Verify(fh.CID, data); err != nil {
				t.Fatalf("accepted a block that does not match its CID: %v", err)
			}
			if !bytes.Equal(got.Bytes(), data) {
				t.Fatalf("wrote %d bytes for a block of %d", got.Len(), len(data))
			}
		}
	})
}

// readVerified reads one frame as the fetcher does; a block frame's data
// is received with receiveVerified.
func readVerified(r *bufio.Reader, buf []byte, hs hash.Hash, begin func(FrameHeader) (w io.Writer, keep bool, err error)) (fh FrameHeader, data []byte, verr, err error) {
	fh, err = ReadFrameHeader(r)
	if err != nil || fh.Type != FrameBlock {
		return fh, buf, nil, err
	}
	data, verr, err = receiveVerified(r, fh, buf, hs, begin)
	return fh, data, verr, err
}
