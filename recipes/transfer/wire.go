package transfer

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"io"
	"slices"

	"github.com/fxamacker/cbor/v2"
	"github.com/ipfs/go-cid"

	"github.com/weftgrid/weft/recipes/store"
	"github.com/weftgrid/weft/recipes/wire"
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

func mustEnc() cbor.EncMode { return wire.Enc }

func mustDec() cbor.DecMode {
	return wire.MustDecMode(wire.DecOptions(wire.Limits{Nesting: 4, Elements: MaxWant, MapPairs: 16}))
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

// MaxBlockHeader bounds the header of a block frame (type, CID length,
// CID, data length).
const MaxBlockHeader = 1 + binary.MaxVarintLen64 + MaxCIDLen + binary.MaxVarintLen64

// AppendBlockHeader appends the header of a block frame for c with n bytes
// of data to dst; the data follows it on the wire.
func AppendBlockHeader(dst []byte, c cid.Cid, n int) []byte {
	cb := c.Bytes()
	dst = append(dst, FrameBlock)
	dst = binary.AppendUvarint(dst, uint64(len(cb)))
	dst = append(dst, cb...)
	return binary.AppendUvarint(dst, uint64(n))
}

// WriteBlock writes a block frame (the caller flushes w).
func WriteBlock(w *bufio.Writer, c cid.Cid, data []byte) error {
	var hdr [MaxBlockHeader]byte
	if _, err := w.Write(AppendBlockHeader(hdr[:0], c, len(data))); err != nil {
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
}

// FrameHeader is a response frame up to a block's data: the type, a
// block's CID and data length (Len bytes of data follow it on the wire), or
// an error frame's message.
type FrameHeader struct {
	// Type is FrameBlock, FrameEnd or FrameError.
	Type byte
	// CID of a block frame.
	CID cid.Cid
	// Len is a block frame's data length (at most store.MaxBlockSize).
	Len int
	// Msg of an error frame.
	Msg string
}

// ReadFrameHeader reads a frame up to a block's data (which the caller
// reads next), or a whole end or error frame. It checks sizes against the
// wire limits.
func ReadFrameHeader(r *bufio.Reader) (FrameHeader, error) {
	t, err := r.ReadByte()
	if err != nil {
		return FrameHeader{}, fmt.Errorf("%w: %v", ErrTruncated, eofOr(err))
	}
	switch t {
	case FrameEnd:
		return FrameHeader{Type: FrameEnd}, nil
	case FrameError:
		n, err := binary.ReadUvarint(r)
		if err != nil {
			return FrameHeader{}, fmt.Errorf("%w: %v", ErrTruncated, eofOr(err))
		}
		if n > MaxErrorLen {
			return FrameHeader{}, fmt.Errorf("%w: error message of %d bytes", ErrProtocol, n)
		}
		m := make([]byte, n)
		if _, err := io.ReadFull(r, m); err != nil {
			return FrameHeader{}, fmt.Errorf("%w: %v", ErrTruncated, eofOr(err))
		}
		return FrameHeader{Type: FrameError, Msg: string(m)}, nil
	case FrameBlock:
	default:
		return FrameHeader{}, fmt.Errorf("%w: unknown frame type 0x%02x", ErrProtocol, t)
	}
	cl, err := binary.ReadUvarint(r)
	if err != nil {
		return FrameHeader{}, fmt.Errorf("%w: %v", ErrTruncated, eofOr(err))
	}
	if cl == 0 || cl > MaxCIDLen {
		return FrameHeader{}, fmt.Errorf("%w: CID of %d bytes", ErrProtocol, cl)
	}
	var cb [MaxCIDLen]byte
	if _, err := io.ReadFull(r, cb[:cl]); err != nil {
		return FrameHeader{}, fmt.Errorf("%w: %v", ErrTruncated, eofOr(err))
	}
	c, err := cid.Cast(cb[:cl])
	if err != nil {
		return FrameHeader{}, fmt.Errorf("%w: bad CID: %v", ErrProtocol, err)
	}
	dl, err := binary.ReadUvarint(r)
	if err != nil {
		return FrameHeader{}, fmt.Errorf("%w: %v", ErrTruncated, eofOr(err))
	}
	if dl > store.MaxBlockSize {
		return FrameHeader{}, fmt.Errorf("%w: block of %d bytes (limit %d)", ErrProtocol, dl, store.MaxBlockSize)
	}
	return FrameHeader{Type: FrameBlock, CID: c, Len: int(dl)}, nil
}

// readPiece is how much block data is read at a time (and, on the
// fetcher, written to the block's temporary file and, for blocks not
// checked in batches, hashed): small enough to stay in the CPU cache
// between the read and what follows, and to grow a buffer only with what
// actually arrived.
const readPiece = 128 << 10

// ReadBlockData reads the n data bytes of a block frame into buf (reused
// when large enough, else grown with the bytes that actually arrive, so a
// peer that announces a large block and sends nothing costs little
// memory). When h is not nil, every piece is written to h right after it
// is read, while it is in the CPU cache.
func ReadBlockData(r *bufio.Reader, n int, buf []byte, h hash.Hash) ([]byte, error) {
	return readBlockData(r, n, buf, true, h, nil)
}

// readBlockData reads the n data bytes of a block frame in pieces of at
// most readPiece bytes, each written to h and then to w (when not nil)
// right after it is read. With keep, the data accumulates in buf (grown
// with what arrives); without, buf only holds the current piece.
func readBlockData(r *bufio.Reader, n int, buf []byte, keep bool, h hash.Hash, w io.Writer) ([]byte, error) {
	buf = buf[:0]
	for got := 0; got < n; {
		k := min(n-got, readPiece)
		buf = slices.Grow(buf, k)
		piece := buf[len(buf) : len(buf)+k]
		if m, err := io.ReadFull(r, piece); err != nil {
			return buf, fmt.Errorf("%w: block cut after %d of %d bytes: %v", ErrTruncated, got+m, n, eofOr(err))
		}
		if h != nil {
			h.Write(piece)
		}
		if w != nil {
			if _, err := w.Write(piece); err != nil {
				return buf, err
			}
		}
		got += k
		if keep {
			buf = buf[:len(buf)+k]
		}
	}
	return buf, nil
}

// ReadFrame reads one whole frame, reusing buf for block data. It checks
// sizes against the wire limits but not hashes (the fetcher does).
func ReadFrame(r *bufio.Reader, buf []byte) (Frame, []byte, error) {
	fh, err := ReadFrameHeader(r)
	if err != nil {
		return Frame{}, buf, err
	}
	if fh.Type != FrameBlock {
		return Frame{Type: fh.Type, Msg: fh.Msg}, buf, nil
	}
	buf, err = ReadBlockData(r, fh.Len, buf, nil)
	if err != nil {
		return Frame{}, buf, fmt.Errorf("block %s: %w", fh.CID, err)
	}
	return Frame{Type: FrameBlock, CID: fh.CID, Data: buf}, buf, nil
}

func eofOr(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return errors.New("stream ended")
	}
	return err
}
