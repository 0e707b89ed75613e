package ledger

import (
	"errors"
	"fmt"
	"math"
)

// decodeWire parses an encoded entry envelope (the 7-element CBOR array of
// wireEntry) without reflection or copies: Author, Prev, Body and Sig are
// sub-slices of b. It accepts exactly the byte strings that
// unmarshalCanonical(b, &wireEntry{}) accepts — the canonical encodings
// encMode produces — and yields the same field values;
// FuzzWireMatchesLibrary checks this against the CBOR library on every
// input the fuzzer finds. It exists because a catch-up decodes a million
// envelopes, and the library's decode-then-re-encode check cost as much
// per entry as a batched signature check.
func decodeWire(b []byte) (w wireEntry, err error) {
	d := wireDecoder{b: b}
	if m, n := d.head(); d.err == nil && (m != 4 || n != 7) {
		d.fail("an entry is a CBOR array of 7 items")
	}
	w.Author = d.bytes()
	w.Seq = d.uint()
	w.Prev = d.bytes()
	if k := d.uint(); k > math.MaxUint8 {
		d.fail("kind out of range")
	} else {
		w.Kind = uint8(k)
	}
	w.Time = d.int()
	w.Body = d.bytes()
	w.Sig = d.bytes()
	if d.err == nil && d.i != len(b) {
		d.fail("trailing bytes")
	}
	if d.err != nil {
		return wireEntry{}, fmt.Errorf("%w: %w", ErrMalformed, d.err)
	}
	return w, nil
}

// wireDecoder reads canonical CBOR data items (RFC 8949 §4.2.1: shortest
// argument, definite lengths) of the kinds an entry envelope holds.
type wireDecoder struct {
	b   []byte
	i   int
	err error
}

func (d *wireDecoder) fail(msg string) {
	if d.err == nil {
		d.err = errors.New(msg)
	}
}

// head reads one item head and returns its major type and argument.
func (d *wireDecoder) head() (major byte, arg uint64) {
	if d.err != nil {
		return 0, 0
	}
	if d.i >= len(d.b) {
		d.fail("unexpected end of data")
		return 0, 0
	}
	ib := d.b[d.i]
	d.i++
	major, ai := ib>>5, ib&0x1f
	var n int
	var least uint64
	switch {
	case ai < 24:
		return major, uint64(ai)
	case ai == 24:
		n, least = 1, 24
	case ai == 25:
		n, least = 2, 1<<8
	case ai == 26:
		n, least = 4, 1<<16
	case ai == 27:
		n, least = 8, 1<<32
	default:
		d.fail("indefinite length or reserved head")
		return 0, 0
	}
	if len(d.b)-d.i < n {
		d.fail("unexpected end of data")
		return 0, 0
	}
	for _, c := range d.b[d.i : d.i+n] {
		arg = arg<<8 | uint64(c)
	}
	d.i += n
	if arg < least {
		d.fail("not canonical CBOR (argument not in its shortest form)")
		return 0, 0
	}
	return major, arg
}

// bytes reads a byte string, or null (the encoding of a nil slice).
func (d *wireDecoder) bytes() []byte {
	if d.err != nil {
		return nil
	}
	if d.i < len(d.b) && d.b[d.i] == 0xf6 {
		d.i++
		return nil
	}
	m, n := d.head()
	if d.err != nil {
		return nil
	}
	if m != 2 {
		d.fail("expected a byte string")
		return nil
	}
	if n > uint64(len(d.b)-d.i) {
		d.fail("unexpected end of data")
		return nil
	}
	s := d.b[d.i : d.i+int(n) : d.i+int(n)]
	d.i += int(n)
	return s
}

// uint reads an unsigned integer.
func (d *wireDecoder) uint() uint64 {
	m, n := d.head()
	if d.err == nil && m != 0 {
		d.fail("expected an unsigned integer")
	}
	return n
}

// int reads a signed integer that fits an int64.
func (d *wireDecoder) int() int64 {
	m, n := d.head()
	if d.err != nil {
		return 0
	}
	switch {
	case m == 0 && n <= math.MaxInt64:
		return int64(n)
	case m == 1 && n <= math.MaxInt64:
		return -1 - int64(n)
	case m == 0 || m == 1:
		d.fail("integer out of int64 range")
	default:
		d.fail("expected an integer")
	}
	return 0
}
