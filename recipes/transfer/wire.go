package transfer

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/fxamacker/cbor/v2"
	"github.com/ipfs/go-cid"

	"github.com/weftgrid/weft/recipes/store"
)

// Wire format of the content protocol (one stream per request):
//
//	fetcher → provider: uvarint length, then a CBOR Request; then close-write.
//	provider → fetcher: frames until an end or error frame:
//	  0x01 block: uvarint cid length, cid bytes, uvarint data length, data
//	  0x02 end:   nothing follows; every block asked for was sent
//	  0x03 error: uvarint length, UTF-8 message (at most MaxErrorLen bytes)
//
// Blocks are sent root first, each before the blocks it links to, so the
// fetcher can check every block against a CID it already trusts.

// Frame types (the first byte of a response frame).
const (
	FrameBlock byte = 0x01
	FrameEnd   byte = 0x02
	FrameError byte = 0x03
)

// Wire limits.
const (
	// MaxRequestBytes bounds an encoded Request.
	MaxRequestBytes = 512 << 10
	// MaxWant bounds the CIDs of one Request.
	MaxWant = 8192
	// MaxCIDLen bounds an encoded CID in a frame.
	MaxCIDLen = 128
	// MaxErrorLen bounds an error frame's message.
	MaxErrorLen = 1024
)

// Wire errors.
var (
	// ErrProtocol means the peer broke the wire format.
	ErrProtocol = errors.New("transfer: protocol violation")
	// ErrTruncated means the stream ended before the end frame.
	ErrTruncated = errors.New("transfer: truncated transfer")
)

// Request asks a provider for blocks.
type Request struct {
	// V is the request version, 1.
	V int `cbor:"v"`
	// Want are the CIDs (binary) of the blocks wanted.
	Want [][]byte `cbor:"want"`
	// Walk asks for every block the wanted ones link to, recursively.
	Walk bool `cbor:"walk,omitempty"`
}

var (
	reqEnc = mustEnc()
	reqDec = mustDec()
)

func mustEnc() cbor.EncMode {
	m, err := cbor.CoreDetEncOptions().EncMode()
	if err != nil {
		panic(err)
	}
	return m
}

func mustDec() cbor.DecMode {
	m, err := cbor.DecOptions{
		MaxNestedLevels:   4,
		MaxArrayElements:  MaxWant,
		MaxMapPairs:       16,
		DupMapKey:         cbor.DupMapKeyEnforcedAPF,
		IndefLength:       cbor.IndefLengthForbidden,
		ExtraReturnErrors: cbor.ExtraDecErrorUnknownField,
	}.DecMode()
	if err != nil {
		panic(err)
	}
	return m
}

// WriteRequest writes want (and walk) as a length-prefixed Request.
func WriteRequest(w io.Writer, want []cid.Cid, walk bool) error {
	if len(want) == 0 || len(want) > MaxWant {
		return fmt.Errorf("transfer: a request wants 1 to %d CIDs, not %d", MaxWant, len(want))
	}
	req := Request{V: 1, Walk: walk, Want: make([][]byte, len(want))}
	for i, c := range want {
		req.Want[i] = c.Bytes()
	}
	b, err := reqEnc.Marshal(&req)
	if err != nil {
		return err
	}
	var hdr [binary.MaxVarintLen64]byte
	n := binary.PutUvarint(hdr[:], uint64(len(b)))
	if _, err := w.Write(append(hdr[:n], b...)); err != nil {
		return fmt.Errorf("transfer: write request: %w", err)
	}
	return nil
}

// ReadRequest reads and checks a Request, returning the wanted CIDs.
func ReadRequest(r *bufio.Reader) ([]cid.Cid, bool, error) {
	n, err := binary.ReadUvarint(r)
	if err != nil {
		return nil, false, fmt.Errorf("%w: request length: %v", ErrProtocol, err)
	}
	if n == 0 || n > MaxRequestBytes {
		return nil, false, fmt.Errorf("%w: request of %d bytes", ErrProtocol, n)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return nil, false, fmt.Errorf("%w: request: %v", ErrTruncated, err)
	}
	var req Request
	if err := reqDec.Unmarshal(b, &req); err != nil {
		return nil, false, fmt.Errorf("%w: request: %v", ErrProtocol, err)
	}
	if req.V != 1 {
		return nil, false, fmt.Errorf("%w: request version %d (this node speaks 1)", ErrProtocol, req.V)
	}
	if len(req.Want) == 0 {
		return nil, false, fmt.Errorf("%w: request wants nothing", ErrProtocol)
	}
	out := make([]cid.Cid, len(req.Want))
	for i, cb := range req.Want {
		c, err := cid.Cast(cb)
		if err != nil {
			return nil, false, fmt.Errorf("%w: request CID: %v", ErrProtocol, err)
		}
		if err := store.CheckCID(c); err != nil {
			return nil, false, fmt.Errorf("%w: %v", ErrProtocol, err)
		}
		out[i] = c
	}
	return out, req.Walk, nil
}

// WriteBlock writes a block frame (the caller flushes w).
func WriteBlock(w *bufio.Writer, c cid.Cid, data []byte) error {
	cb := c.Bytes()
	var hdr [1 + 2*binary.MaxVarintLen64 + MaxCIDLen]byte
	hdr[0] = FrameBlock
	n := 1 + binary.PutUvarint(hdr[1:], uint64(len(cb)))
	n += copy(hdr[n:], cb)
	n += binary.PutUvarint(hdr[n:], uint64(len(data)))
	if _, err := w.Write(hdr[:n]); err != nil {
		return err
	}
	_, err := w.Write(data)
	return err
}

// WriteEnd writes the end frame.
func WriteEnd(w *bufio.Writer) error { return w.WriteByte(FrameEnd) }

// WriteError writes an error frame (message cut at MaxErrorLen).
func WriteError(w *bufio.Writer, msg string) error {
	if len(msg) > MaxErrorLen {
		msg = msg[:MaxErrorLen]
	}
	var hdr [1 + binary.MaxVarintLen64]byte
	hdr[0] = FrameError
	n := 1 + binary.PutUvarint(hdr[1:], uint64(len(msg)))
	if _, err := w.Write(hdr[:n]); err != nil {
		return err
	}
	_, err := w.WriteString(msg)
	return err
}

// Frame is one decoded response frame.
type Frame struct {
	// Type is FrameBlock, FrameEnd or FrameError.
	Type byte
	// CID of a block frame.
	CID cid.Cid
	// Data of a block frame; valid until the next ReadFrame with the same buffer.
	Data []byte
	// Msg of an error frame.
	Msg string

	verr error // result of checking Data against CID (fetcher side)
}

// ReadFrame reads one frame, reusing buf for block data. It checks sizes
// against the wire limits but not hashes (the fetcher does).
func ReadFrame(r *bufio.Reader, buf []byte) (Frame, []byte, error) {
	t, err := r.ReadByte()
	if err != nil {
		return Frame{}, buf, fmt.Errorf("%w: %v", ErrTruncated, eofOr(err))
	}
	switch t {
	case FrameEnd:
		return Frame{Type: FrameEnd}, buf, nil
	case FrameError:
		n, err := binary.ReadUvarint(r)
		if err != nil {
			return Frame{}, buf, fmt.Errorf("%w: %v", ErrTruncated, eofOr(err))
		}
		if n > MaxErrorLen {
			return Frame{}, buf, fmt.Errorf("%w: error message of %d bytes", ErrProtocol, n)
		}
		m := make([]byte, n)
		if _, err := io.ReadFull(r, m); err != nil {
			return Frame{}, buf, fmt.Errorf("%w: %v", ErrTruncated, eofOr(err))
		}
		return Frame{Type: FrameError, Msg: string(m)}, buf, nil
	case FrameBlock:
	default:
		return Frame{}, buf, fmt.Errorf("%w: unknown frame type 0x%02x", ErrProtocol, t)
	}
	cl, err := binary.ReadUvarint(r)
	if err != nil {
		return Frame{}, buf, fmt.Errorf("%w: %v", ErrTruncated, eofOr(err))
	}
	if cl == 0 || cl > MaxCIDLen {
		return Frame{}, buf, fmt.Errorf("%w: CID of %d bytes", ErrProtocol, cl)
	}
	var cb [MaxCIDLen]byte
	if _, err := io.ReadFull(r, cb[:cl]); err != nil {
		return Frame{}, buf, fmt.Errorf("%w: %v", ErrTruncated, eofOr(err))
	}
	c, err := cid.Cast(cb[:cl])
	if err != nil {
		return Frame{}, buf, fmt.Errorf("%w: bad CID: %v", ErrProtocol, err)
	}
	dl, err := binary.ReadUvarint(r)
	if err != nil {
		return Frame{}, buf, fmt.Errorf("%w: %v", ErrTruncated, eofOr(err))
	}
	if dl > store.MaxBlockSize {
		return Frame{}, buf, fmt.Errorf("%w: block of %d bytes (limit %d)", ErrProtocol, dl, store.MaxBlockSize)
	}
	if uint64(cap(buf)) >= dl {
		buf = buf[:dl]
		if n, err := io.ReadFull(r, buf); err != nil {
			return Frame{}, buf, fmt.Errorf("%w: block %s cut after %d of %d bytes: %v", ErrTruncated, c, n, dl, eofOr(err))
		}
	} else {
		// Grow with what actually arrives, so a peer that announces a large
		// block and sends nothing costs little memory.
		bb := bytes.NewBuffer(make([]byte, 0, min(dl, store.ChunkSize+4096)))
		if n, err := io.CopyN(bb, r, int64(dl)); err != nil {
			return Frame{}, buf, fmt.Errorf("%w: block %s cut after %d of %d bytes: %v", ErrTruncated, c, n, dl, eofOr(err))
		}
		buf = bb.Bytes()
	}
	return Frame{Type: FrameBlock, CID: c, Data: buf}, buf, nil
}

func eofOr(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return errors.New("stream ended")
	}
	return err
}
