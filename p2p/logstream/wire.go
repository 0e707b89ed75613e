// Package logstream serves an instance's process logs over libp2p streams:
// a requester's node asks the instance's host for the logs (the last lines,
// everything, or everything and then what is written next), the host checks
// that the asking peer may read them (the instance's requester or one of
// its delegates) and streams them from files it opens beneath the
// partition's log directory, never following a symlink.
//
// # Usage
//
//	srv := logstream.NewServer(h, prefix+logstream.Protocol, source, authorize, log)
//	defer srv.Close()
//	r, err := logstream.Open(ctx, h, host, prefix+logstream.Protocol, logstream.Request{Instance: id, Tail: 20})
//	err = r.Copy(w) // "==> process <==" before each log when several
//
// Serve writes the same frames for a local source (the host reading its
// own instance's logs).
//
// # Wire
//
// One stream per request. The client writes a request: a version byte (1),
// uvarint length ‖ instance ID (≤ 256 bytes), uvarint length ‖ process name
// (≤ 128 bytes, empty: every process), uvarint tail (lines, ≤ MaxTail; 0:
// the whole log), uvarint since (milliseconds; 0: no bound), a flags byte
// (bit 0: follow). The server answers with frames: a type byte, uvarint
// length (≤ MaxFrame) ‖ payload. Types: 1 log (payload: the process name
// the next data frames belong to), 2 data (log bytes), 3 end, 4 error (a
// one-line reason ≤ 512 bytes, then the stream ends), 5 keepalive (empty;
// sent while following a quiet log, so that a reader that went away is
// noticed).
//
// # Concurrency
//
// A Server serves each stream in its own goroutine, at most MaxPerPeer at
// once per peer; Close resets the streams it serves and waits for them.
package logstream

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"
)

// Protocol is the stream protocol (after the grid's prefix).
const Protocol = "/instance/logs/1"

// Limits.
const (
	// MaxInstance bounds the instance ID, MaxProcess the process name.
	MaxInstance = 256
	MaxProcess  = 128
	// MaxTail bounds the lines a request may ask for.
	MaxTail = 100_000
	// MaxFrame bounds a frame's payload.
	MaxFrame = 32 << 10
	// MaxReason bounds an error frame's reason.
	MaxReason = 512
	// MaxPerPeer bounds the log streams one peer has open at once.
	MaxPerPeer = 8
	// RequestTimeout bounds reading the request and the authorization.
	RequestTimeout = 10 * time.Second
	// WriteTimeout bounds each frame's write: a reader that stops
	// reading is cut off.
	WriteTimeout = 30 * time.Second
	// Keepalive is how often a quiet follow sends a keepalive frame.
	Keepalive = 10 * time.Second
	// PollInterval is how often a follow looks for new log bytes.
	PollInterval = 250 * time.Millisecond
)

// Frame types.
const (
	FrameLog       byte = 1
	FrameData      byte = 2
	FrameEnd       byte = 3
	FrameError     byte = 4
	FrameKeepalive byte = 5
)

var (
	// ErrMalformed is returned for a request or frame that does not parse
	// or breaks a bound.
	ErrMalformed = errors.New("logstream: malformed message")
	// ErrRefused wraps the reason a server refused or ended a request.
	ErrRefused = errors.New("logstream: refused")
)

// Request asks for an instance's logs.
type Request struct {
	// Instance is the instance ID.
	Instance string
	// Process names one process ("" = every process).
	Process string
	// Tail is how many of the last lines to send (0 = the whole log).
	Tail int
	// Since skips the logs not written to within this duration (0 = none).
	// Log lines carry no time: a log's modification time decides.
	Since time.Duration
	// Follow keeps the stream open and sends what is written next.
	Follow bool
}

const version = 1

// Encode returns the request's wire form.
func (r Request) Encode() ([]byte, error) {
	if len(r.Instance) == 0 || len(r.Instance) > MaxInstance || len(r.Process) > MaxProcess || r.Tail < 0 || r.Tail > MaxTail || r.Since < 0 {
		return nil, fmt.Errorf("%w: request out of bounds", ErrMalformed)
	}
	b := []byte{version}
	b = binary.AppendUvarint(b, uint64(len(r.Instance)))
	b = append(b, r.Instance...)
	b = binary.AppendUvarint(b, uint64(len(r.Process)))
	b = append(b, r.Process...)
	b = binary.AppendUvarint(b, uint64(r.Tail))
	b = binary.AppendUvarint(b, uint64(r.Since.Milliseconds()))
	var flags byte
	if r.Follow {
		flags |= 1
	}
	return append(b, flags), nil
}

// ReadRequest decodes a request from r, enforcing every bound.
func ReadRequest(r *bufio.Reader) (Request, error) {
	var q Request
	v, err := r.ReadByte()
	if err != nil {
		return q, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if v != version {
		return q, fmt.Errorf("%w: version %d", ErrMalformed, v)
	}
	inst, err := readField(r, MaxInstance)
	if err != nil {
		return q, err
	}
	proc, err := readField(r, MaxProcess)
	if err != nil {
		return q, err
	}
	tail, err := binary.ReadUvarint(r)
	if err != nil || tail > MaxTail {
		return q, fmt.Errorf("%w: tail", ErrMalformed)
	}
	since, err := binary.ReadUvarint(r)
	if err != nil || since > uint64(100*365*24*time.Hour/time.Millisecond) {
		return q, fmt.Errorf("%w: since", ErrMalformed)
	}
	flags, err := r.ReadByte()
	if err != nil || flags&^1 != 0 {
		return q, fmt.Errorf("%w: flags", ErrMalformed)
	}
	if len(inst) == 0 {
		return q, fmt.Errorf("%w: no instance", ErrMalformed)
	}
	return Request{Instance: string(inst), Process: string(proc), Tail: int(tail), Since: time.Duration(since) * time.Millisecond, Follow: flags&1 != 0}, nil
}

func readField(r *bufio.Reader, max int) ([]byte, error) {
	n, err := binary.ReadUvarint(r)
	if err != nil || n > uint64(max) {
		return nil, fmt.Errorf("%w: field length", ErrMalformed)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	return b, nil
}

// Frame is one frame of the server's answer.
type Frame struct {
	Type    byte
	Payload []byte
}

// writeFrame writes one frame.
func writeFrame(w io.Writer, typ byte, payload []byte) error {
	if len(payload) > MaxFrame {
		return fmt.Errorf("%w: frame of %d bytes", ErrMalformed, len(payload))
	}
	b := make([]byte, 0, 1+binary.MaxVarintLen64+len(payload))
	b = append(b, typ)
	b = binary.AppendUvarint(b, uint64(len(payload)))
	b = append(b, payload...)
	_, err := w.Write(b)
	return err
}

// ReadFrame decodes one frame from r, enforcing the bounds of its type.
func ReadFrame(r *bufio.Reader) (Frame, error) {
	typ, err := r.ReadByte()
	if err != nil {
		return Frame{}, err // io.EOF: the stream ended
	}
	n, err := binary.ReadUvarint(r)
	if err != nil {
		return Frame{}, fmt.Errorf("%w: frame length: %v", ErrMalformed, err)
	}
	max := uint64(MaxFrame)
	switch typ {
	case FrameLog:
		max = MaxProcess
	case FrameError:
		max = MaxReason
	case FrameEnd, FrameKeepalive:
		max = 0
	case FrameData:
	default:
		return Frame{}, fmt.Errorf("%w: frame type %d", ErrMalformed, typ)
	}
	if n > max {
		return Frame{}, fmt.Errorf("%w: frame type %d of %d bytes", ErrMalformed, typ, n)
	}
	f := Frame{Type: typ, Payload: make([]byte, n)}
	if _, err := io.ReadFull(r, f.Payload); err != nil {
		return Frame{}, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	return f, nil
}
