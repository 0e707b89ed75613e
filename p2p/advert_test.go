package p2p

import (
	"crypto/rand"
	"errors"
	"testing"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

func testKey(t testing.TB) (crypto.PrivKey, peer.ID) {
	k, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	id, err := peer.IDFromPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return k, id
}

func sampleMeta() Meta {
	return Meta{
		Seq:    42,
		Advert: Advert{CPUMillis: 4000, MemoryBytes: 8 << 30, DiskBytes: 100 << 30, FreePartitions: 7, Labels: map[string]string{"region": "eu-west", "arch": "arm64"}},
		Addrs:  []ma.Multiaddr{ma.StringCast("/ip4/192.0.2.7/tcp/4001"), ma.StringCast("/ip6/2001:db8::1/udp/4001/quic-v1")},
	}
}

func TestMetaRoundTripAndForgery(t *testing.T) {
	k, id := testKey(t)
	b, err := EncodeMeta(k, sampleMeta())
	if err != nil {
		t.Fatal(err)
	}
	if len(b) > MaxMetaSize {
		t.Fatalf("meta is %d bytes", len(b))
	}
	m, err := DecodeMeta(id, b)
	if err != nil {
		t.Fatal(err)
	}
	if m.Seq != 42 || m.Advert.FreePartitions != 7 || m.Advert.Labels["arch"] != "arm64" || len(m.Addrs) != 2 || !m.Addrs[1].Equal(sampleMeta().Addrs[1]) {
		t.Fatalf("round trip changed the meta: %+v", m)
	}
	// Claimed by another peer: the signature does not verify.
	_, other := testKey(t)
	if _, err := DecodeMeta(other, b); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("meta replayed under another peer ID: err %v", err)
	}
	// Any flipped byte is rejected.
	for i := range b {
		c := append([]byte(nil), b...)
		c[i] ^= 0x01
		if _, err := DecodeMeta(id, c); err == nil {
			t.Fatalf("meta with byte %d flipped was accepted", i)
		}
	}
	if _, err := DecodeMeta(id, make([]byte, MaxMetaSize+1)); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("oversized meta: %v", err)
	}
}

func FuzzDecodeMeta(f *testing.F) {
	k, id := testKey(f)
	b, err := EncodeMeta(k, sampleMeta())
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add([]byte{})
	f.Add([]byte{0xa2, 0x01, 0xa0, 0x02, 0x40})
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := DecodeMeta(id, data)
		if err != nil {
			return
		}
		// Whatever verifies must re-encode to a valid meta of the same peer.
		b2, err := EncodeMeta(k, m)
		if err != nil {
			t.Fatalf("decoded meta does not re-encode: %v", err)
		}
		if _, err := DecodeMeta(id, b2); err != nil {
			t.Fatal(err)
		}
	})
}
