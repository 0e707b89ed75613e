package logstream

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/peer"
)

// TestOverLibp2p serves logs between two real libp2p hosts: the
// authorized peer reads them, another peer (or another instance) is
// refused, and garbage on the stream leaves the server serving.
func TestOverLibp2p(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "httpd.log"), []byte("serving\nrequest 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
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
	stranger, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"))
	if err != nil {
		t.Fatal(err)
	}
	defer stranger.Close()
	const proto = "/weft/test" + Protocol
	srv := NewServer(srvHost, proto, dirSource{dir}, func(_ context.Context, from peer.ID, instance string) error {
		if from != client.ID() || instance != "web" {
			return errors.New("only the instance's requester and its delegates may read its logs")
		}
		return nil
	}, slog.New(slog.DiscardHandler))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, h := range []interface {
		Connect(context.Context, peer.AddrInfo) error
	}{client, stranger} {
		if err := h.Connect(ctx, peer.AddrInfo{ID: srvHost.ID(), Addrs: srvHost.Addrs()}); err != nil {
			t.Fatal(err)
		}
	}
	read := func(r *Reader, err error) (string, error) {
		if err != nil {
			return "", err
		}
		defer r.Close()
		var out bytes.Buffer
		err = r.Copy(&out)
		return out.String(), err
	}
	// Garbage first: the server drops it and keeps serving.
	if st, err := stranger.NewStream(ctx, srvHost.ID(), proto); err == nil {
		_, _ = st.Write([]byte{9, 9, 9, 0xff, 0xff})
		_ = st.Close()
	}
	if _, err := read(Open(ctx, stranger, srvHost.ID(), proto, Request{Instance: "web"})); !errors.Is(err, ErrRefused) {
		t.Fatalf("a stranger read the logs: %v", err)
	}
	if _, err := read(Open(ctx, client, srvHost.ID(), proto, Request{Instance: "db"})); !errors.Is(err, ErrRefused) {
		t.Fatalf("the logs of another instance: %v", err)
	}
	got, err := read(Open(ctx, client, srvHost.ID(), proto, Request{Instance: "web", Tail: 1}))
	if err != nil || !strings.Contains(got, "request 1\n") || strings.Contains(got, "serving") {
		t.Fatalf("tail 1: %q %v", got, err)
	}
}
