package schedp2p

import (
	"bufio"
	"bytes"
	"errors"
	"testing"

	"github.com/weftgrid/weft/scheduler"
)

func TestMarketFrameRoundTripAndBounds(t *testing.T) {
	var buf bytes.Buffer
	msg := bytes.Repeat([]byte("x"), 1000)
	if err := writeFrame(&buf, msg); err != nil {
		t.Fatal(err)
	}
	got, err := readFrame(bufio.NewReader(bytes.NewReader(buf.Bytes())), scheduler.MaxMessageBytes)
	if err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("round trip: %v, %d bytes", err, len(got))
	}
	// Over the bound: rejected from the header, before reading the body.
	if _, err := readFrame(bufio.NewReader(bytes.NewReader(buf.Bytes())), 999); !errors.Is(err, ErrFrame) {
		t.Fatalf("oversized frame: %v", err)
	}
	// Truncated body, empty frame, bad varint.
	for name, in := range map[string][]byte{
		"truncated": buf.Bytes()[:500],
		"empty":     {0},
		"varint":    bytes.Repeat([]byte{0xff}, 11),
	} {
		if _, err := readFrame(bufio.NewReader(bytes.NewReader(in)), scheduler.MaxMessageBytes); err == nil {
			t.Errorf("%s frame accepted", name)
		}
	}
}

func FuzzMarketFrame(f *testing.F) {
	var buf bytes.Buffer
	_ = writeFrame(&buf, []byte("hello"))
	f.Add(buf.Bytes())
	f.Add([]byte{0})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, in []byte) {
		got, err := readFrame(bufio.NewReader(bytes.NewReader(in)), 4096)
		if err == nil && (len(got) == 0 || len(got) > 4096) {
			t.Fatalf("accepted a frame of %d bytes", len(got))
		}
	})
}
