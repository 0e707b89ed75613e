package logstream

import (
	"bufio"
	"bytes"
	"io"
	"testing"
)

func FuzzReadRequest(f *testing.F) {
	b, _ := Request{Instance: "abc", Process: "p", Tail: 5, Follow: true}.Encode()
	f.Add(b)
	f.Add([]byte{1, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		req, err := ReadRequest(bufio.NewReader(bytes.NewReader(data)))
		if err != nil {
			return
		}
		if len(req.Instance) == 0 || len(req.Instance) > MaxInstance || len(req.Process) > MaxProcess || req.Tail > MaxTail {
			t.Fatalf("out of bounds request decoded: %+v", req)
		}
		again, err := req.Encode()
		if err != nil {
			t.Fatalf("decoded request does not encode: %v", err)
		}
		back, err := ReadRequest(bufio.NewReader(bytes.NewReader(again)))
		if err != nil || back != req {
			t.Fatalf("round trip: %+v %v", back, err)
		}
	})
}

func FuzzReadFrame(f *testing.F) {
	var buf bytes.Buffer
	_ = writeFrame(&buf, FrameLog, []byte("httpd"))
	_ = writeFrame(&buf, FrameData, []byte("hello\n"))
	_ = writeFrame(&buf, FrameEnd, nil)
	f.Add(buf.Bytes())
	f.Add([]byte{FrameError, 3, 'b', 'a', 'd'})
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bufio.NewReader(bytes.NewReader(data))
		for range 64 {
			fr, err := ReadFrame(r)
			if err != nil {
				break
			}
			if len(fr.Payload) > MaxFrame {
				t.Fatalf("frame of %d bytes decoded", len(fr.Payload))
			}
		}
		_ = NewReader(bytes.NewReader(data), nil).Copy(io.Discard)
	})
}
