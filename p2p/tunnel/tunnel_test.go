package tunnel

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/peer"
)

func TestRequestAndAnswerRoundTrip(t *testing.T) {
	var b bytes.Buffer
	if err := WriteRequest(&b, Request{Instance: "abc", Port: "http"}); err != nil {
		t.Fatal(err)
	}
	if err := WriteAnswer(&b, errors.New("not yours")); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(&b)
	req, err := ReadRequest(r)
	if err != nil || req != (Request{Instance: "abc", Port: "http"}) {
		t.Fatalf("request %+v, %v", req, err)
	}
	if err := ReadAnswer(r); !errors.Is(err, ErrRefused) || err.Error() != "tunnel: refused: not yours" {
		t.Fatalf("answer %v", err)
	}
	if err := WriteRequest(&b, Request{Instance: string(make([]byte, MaxField+1))}); !errors.Is(err, ErrMalformed) {
		t.Fatalf("oversized field written: %v", err)
	}
}

func FuzzReadRequest(f *testing.F) {
	var b bytes.Buffer
	_ = WriteRequest(&b, Request{Instance: "abc", Port: "http"})
	f.Add(b.Bytes())
	b.Reset()
	_ = WriteAnswer(&b, errors.New("no"))
	f.Add(b.Bytes())
	f.Fuzz(func(t *testing.T, data []byte) {
		if req, err := ReadRequest(bufio.NewReader(bytes.NewReader(data))); err == nil {
			if len(req.Instance) == 0 || len(req.Instance) > MaxField || len(req.Port) > MaxField {
				t.Fatalf("accepted %+v", req)
			}
		}
		if err := ReadAnswer(Unbuffered{bytes.NewReader(data)}); err != nil && !errors.Is(err, ErrRefused) && !errors.Is(err, ErrMalformed) {
			t.Fatalf("answer error %v", err)
		}
	})
}

// A tunnel carries a TCP connection both ways to the authorized port, and
// an unauthorized peer is refused with the server's reason.
func TestTunnelForwardsAndRefuses(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_, _ = c.Write([]byte("banner\n")) // a server that speaks first
				_, _ = io.Copy(c, c)
			}()
		}
	}()
	srvHost, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"))
	if err != nil {
		t.Fatal(err)
	}
	defer srvHost.Close()
	client, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	const proto = "/weft/test" + Protocol
	srv := NewServer(srvHost, proto, func(_ context.Context, from peer.ID, req Request) (string, error) {
		if from != client.ID() || req.Instance != "web" {
			return "", errors.New("not the instance's requester")
		}
		return ln.Addr().String(), nil
	}, slog.New(slog.DiscardHandler))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := client.Connect(ctx, peer.AddrInfo{ID: srvHost.ID(), Addrs: srvHost.Addrs()}); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(ctx, client, srvHost.ID(), proto, Request{Instance: "db"}); !errors.Is(err, ErrRefused) {
		t.Fatalf("tunnel to another instance: %v", err)
	}
	st, err := Open(ctx, client, srvHost.ID(), proto, Request{Instance: "web", Port: "http"})
	if err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(st)
	if line, err := r.ReadString('\n'); err != nil || line != "banner\n" {
		t.Fatalf("banner %q, %v", line, err)
	}
	_, _ = st.Write([]byte("ping"))
	_ = st.CloseWrite()
	rest, err := io.ReadAll(r)
	if err != nil || string(rest) != "ping" {
		t.Fatalf("echo %q, %v", rest, err)
	}
}
