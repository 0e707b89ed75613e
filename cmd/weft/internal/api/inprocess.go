package api

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
)

// ErrAnswerTooLarge means an in-process answer exceeded the client's bound.
var ErrAnswerTooLarge = errors.New("api: answer larger than the bound")

// NewHandlerClient returns a client whose requests h serves in process,
// with no socket: the node reads its own routes this way (the dashboard's
// change poll), through the same typed methods as the CLI. An answer
// larger than maxBody bytes fails with ErrAnswerTooLarge.
func NewHandlerClient(h http.Handler, token string, maxBody int) *Client {
	return &Client{Base: "http://in-process", token: token, http: &http.Client{Transport: handlerTransport{h, maxBody}}}
}

// handlerTransport is an http.RoundTripper that serves each request
// through a handler into a bounded buffer.
type handlerTransport struct {
	h   http.Handler
	max int
}

func (t handlerTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	r := req.Clone(req.Context())
	if r.Body == nil {
		r.Body = http.NoBody
	}
	r.RequestURI = r.URL.RequestURI()
	w := &boundedWriter{header: http.Header{}, max: t.max}
	t.h.ServeHTTP(w, r)
	if w.tooBig {
		return nil, fmt.Errorf("%w (%d bytes): %s %s", ErrAnswerTooLarge, t.max, req.Method, req.URL.Path)
	}
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return &http.Response{
		Status: fmt.Sprintf("%d %s", w.status, http.StatusText(w.status)), StatusCode: w.status,
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: w.header, Body: io.NopCloser(bytes.NewReader(w.body.Bytes())), ContentLength: int64(w.body.Len()), Request: req,
	}, nil
}

// boundedWriter is an in-memory http.ResponseWriter holding at most max
// bytes of body.
type boundedWriter struct {
	header http.Header
	status int
	body   bytes.Buffer
	max    int
	tooBig bool
}

func (w *boundedWriter) Header() http.Header { return w.header }

func (w *boundedWriter) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
}

func (w *boundedWriter) Write(p []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	if w.body.Len()+len(p) > w.max {
		w.tooBig = true
		return 0, ErrAnswerTooLarge
	}
	return w.body.Write(p)
}
