package grid

import (
	"crypto/rand"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
)

func key(t testing.TB) (crypto.PrivKey, peer.ID) {
	k, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	id, _ := peer.IDFromPrivateKey(k)
	return k, id
}

func TestMemberListSignAdmitRevoke(t *testing.T) {
	fk, fid := key(t)
	f, err := New("lab", fid)
	if err != nil {
		t.Fatal(err)
	}
	_, a := key(t)
	_, b := key(t)
	l := MemberList{GridID: f.ID, Version: 1}
	l = l.Admit(a, 1).Admit(b, 2).Admit(a, 3)
	if l.Version != 4 || len(l.Members) != 2 || !l.Contains(fid, a) || !l.Contains(fid, b) || !l.Contains(fid, fid) {
		t.Fatalf("after admits: %+v", l)
	}
	l = l.Revoke(b, 4)
	if l.Contains(fid, b) || len(l.Revoked) != 1 {
		t.Fatalf("after revoke: %+v", l)
	}
	enc, err := l.Sign(fk)
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeMemberList(enc, f)
	if err != nil {
		t.Fatal(err)
	}
	if got.Version != l.Version || len(got.Members) != 1 || got.Members[0] != a {
		t.Fatalf("decoded %+v", got)
	}
	// Signed by someone else: rejected.
	ok, _ := key(t)
	forged, _ := l.Admit(b, 5).Sign(ok)
	if _, err := DecodeMemberList(forged, f); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("forged list: %v", err)
	}
	// For another grid: rejected.
	g := f
	g.ID = "00000000000000000000000000000000"
	if _, err := DecodeMemberList(enc, g); err == nil {
		t.Fatal("list for another grid accepted")
	}
}

func FuzzDecodeMemberList(f *testing.F) {
	fk, fid := key(f)
	gf, err := New("lab", fid)
	if err != nil {
		f.Fatal(err)
	}
	_, a := key(f)
	enc, err := MemberList{GridID: gf.ID, Version: 1}.Admit(a, 1).Sign(fk)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(enc)
	f.Add([]byte{0xa0})
	f.Fuzz(func(t *testing.T, data []byte) {
		l, err := DecodeMemberList(data, gf)
		if err != nil {
			return
		}
		if l.GridID != gf.ID {
			t.Fatalf("accepted a list for grid %q", l.GridID)
		}
	})
}

func FuzzParseFile(f *testing.F) {
	_, id := key(f)
	gf, err := New("lab", id)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(gf.Encode())
	_, g2 := key(f)
	gf.Granters, gf.Slice = []peer.ID{g2}, 2*time.Second
	f.Add(gf.Encode())
	f.Add([]byte("name = \"x\"\n"))
	f.Add([]byte("[[a]]\nb=1"))
	f.Fuzz(func(t *testing.T, data []byte) {
		g, err := Parse(data)
		if err != nil {
			return
		}
		if err := g.Validate(); err != nil {
			t.Fatalf("parsed file does not validate: %v", err)
		}
		h, err := Parse(g.Encode())
		if err != nil || h.ID != g.ID || h.Name != g.Name || h.Founder != g.Founder || h.Slice != g.Slice || !slices.Equal(h.Granters, g.Granters) {
			t.Fatalf("re-encoding changed the file: %v", err)
		}
	})
}

// A grid file names the granters besides the founder and the grid's slice;
// both survive encoding, and a bad slice is refused.
func TestGridFileCarriesGrantersAndSlice(t *testing.T) {
	_, founder := key(t)
	_, granter := key(t)
	f, err := New("lab", founder)
	if err != nil {
		t.Fatal(err)
	}
	f.Granters, f.Slice = []peer.ID{granter}, 5*time.Second
	g, err := Parse(f.Encode())
	if err != nil {
		t.Fatal(err)
	}
	if g.Slice != 5*time.Second || !slices.Equal(g.Granters, []peer.ID{granter}) {
		t.Fatalf("parsed %+v", g)
	}
	f.Slice = time.Millisecond
	if _, err := Parse(f.Encode()); !errors.Is(err, ErrBadFile) {
		t.Fatalf("1ms slice: %v", err)
	}
}
