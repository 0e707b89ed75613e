package demo

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/weftgrid/weft/recipes"
)

func TestMemberCounts(t *testing.T) {
	names := []string{"node0", "node1", "node2"}
	if ok, why := memberCounts(names, []int{3, 3, 3}, 3); !ok || why != "" {
		t.Fatalf("all 3: %v %q", ok, why)
	}
	ok, why := memberCounts(names, []int{3, 1, 2}, 3)
	if ok || !strings.Contains(why, "node1 sees 1") || !strings.Contains(why, "node2 sees 2") || strings.Contains(why, "node0") {
		t.Fatalf("partial: %v %q", ok, why)
	}
}

func TestRootsAgree(t *testing.T) {
	names := []string{"a", "b"}
	good := auditReport{OK: true, Root: "r1", Receipts: 4}
	if r, err := rootsAgree(names, []auditReport{good, good}); err != nil || r != "r1" {
		t.Fatalf("same roots: %q %v", r, err)
	}
	if _, err := rootsAgree(names, []auditReport{good, {OK: true, Root: "r2"}}); err == nil || !strings.Contains(err.Error(), "roots differ") {
		t.Fatalf("different roots: %v", err)
	}
	prob := json.RawMessage(`{"cid":"bafy","problem":"bad signature"}`)
	_, err := rootsAgree(names, []auditReport{good, {OK: false, Root: "r1", Problems: []json.RawMessage{prob}}})
	if err == nil || !strings.Contains(err.Error(), "bad signature") || !strings.Contains(err.Error(), "b: audit not ok") {
		t.Fatalf("not ok: %v", err)
	}
	if _, err := rootsAgree(names, []auditReport{{OK: true}, {OK: true}}); err == nil {
		t.Fatal("empty roots accepted")
	}
	// The same problem on several nodes is said once, naming them.
	_, err = rootsAgree(names, []auditReport{{Root: "r", Problems: []json.RawMessage{prob}}, {Root: "r", Problems: []json.RawMessage{prob}}})
	if err == nil || strings.Count(err.Error(), "bad signature") != 1 || !strings.Contains(err.Error(), "a,b: audit not ok") {
		t.Fatalf("grouped: %v", err)
	}
	if _, err := rootsAgree(nil, nil); err == nil {
		t.Fatal("no audits accepted")
	}
}

func TestCheckPlaced(t *testing.T) {
	isNode := func(id string) bool { return id == "P1" }
	good := instance{Name: "web", Node: "P1", State: "started", Connection: map[string]any{"url": "http://127.0.0.1:2000/"}}
	if err := checkPlaced(good, isNode); err != nil {
		t.Fatal(err)
	}
	for name, in := range map[string]instance{
		"no host":      {Name: "web", State: "started", Connection: good.Connection},
		"foreign host": {Name: "web", Node: "P9", State: "started", Connection: good.Connection},
		"not started":  {Name: "web", Node: "P1", State: "pending", Connection: good.Connection},
		"no url":       {Name: "web", Node: "P1", State: "started"},
	} {
		if err := checkPlaced(in, isNode); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if u := (instance{Connection: map[string]any{"url": "127.0.0.1:80/"}}).url(); u != "http://127.0.0.1:80/" {
		t.Errorf("url without scheme: %q", u)
	}
}

func TestFindNumber(t *testing.T) {
	dir := t.TempDir()
	if _, _, err := findNumber(dir, 9592); err == nil {
		t.Fatal("empty result accepted")
	}
	must := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(dir, "sub"), 0o700))
	must(os.WriteFile(filepath.Join(dir, "log.txt"), []byte("n=100000 95920 19592\n"), 0o600))
	if _, _, err := findNumber(dir, 9592); err == nil {
		t.Fatal("9592 found inside other numbers")
	}
	must(os.WriteFile(filepath.Join(dir, "sub", "count.txt"), []byte("primes below 100000: 9592\n"), 0o600))
	f, line, err := findNumber(dir, 9592)
	if err != nil || f != filepath.Join("sub", "count.txt") || line != "primes below 100000: 9592" {
		t.Fatalf("got %q %q %v", f, line, err)
	}
}

func TestAuctions(t *testing.T) {
	all := []auction{
		{Request: json.RawMessage(`"web"`), InstanceID: "i1", Winner: "A", Bids: []bid{{Node: "A"}}},
		{Request: json.RawMessage(`{"name":"web2"}`), Winner: "B", Bids: []bid{{Node: "A"}, {Node: "B"}}},
		{Request: json.RawMessage(`"web"`), InstanceID: "i3", Winner: "C", Bids: []bid{{Node: "C"}}},
	}
	if a, ok := findAuction(all, "i1", "web"); !ok || a.Winner != "A" {
		t.Fatalf("by instance id: %+v %v", a, ok)
	}
	if a, ok := findAuction(all, "", "web2"); !ok || a.Winner != "B" {
		t.Fatalf("by request object name: %+v %v", a, ok)
	}
	if a, ok := findAuction(all, "", "web"); !ok || a.Winner != "C" {
		t.Fatalf("latest by request name: %+v %v", a, ok)
	}
	if _, ok := findAuction(all, "nope", "nope"); ok {
		t.Fatal("found an auction that is not there")
	}
	if err := checkAuction(all[1], "B"); err != nil {
		t.Fatal(err)
	}
	if err := checkAuction(all[1], "A"); err == nil {
		t.Fatal("winner other than the host accepted")
	}
	if err := checkAuction(auction{Winner: "B"}, "B"); err == nil {
		t.Fatal("auction without bids accepted")
	}
	if err := checkAuction(auction{Winner: "B", Bids: []bid{{Node: "A"}}}, "B"); err == nil {
		t.Fatal("winner that did not bid accepted")
	}
}

func TestNonEmptyJSON(t *testing.T) {
	for raw, want := range map[string]bool{`null`: false, `{}`: false, `[]`: false, `""`: false, `x`: false,
		`{"a":1}`: true, `[1]`: true, `0`: true, `"s"`: true} {
		if got := nonEmptyJSON([]byte(raw)); got != want {
			t.Errorf("%s: %v", raw, got)
		}
	}
}

func TestLoopbackAddrs(t *testing.T) {
	in := []string{"/ip4/10.0.0.2/tcp/4001/p2p/X", "/ip4/127.0.0.1/tcp/4001/p2p/X", "/ip4/127.0.0.1/udp/4001/quic-v1/p2p/X", "/ip4/127.0.0.1/tcp/4002/ws/p2p/X"}
	got := loopbackAddrs(in)
	if len(got) != 1 || got[0] != in[1] {
		t.Fatalf("%v", got)
	}
	other := []string{"/ip4/10.0.0.2/tcp/1/p2p/X"}
	if got := loopbackAddrs(other); len(got) != 1 {
		t.Fatalf("no loopback: %v", got)
	}
}

func TestPollStopsOnPermanentErrorsAndDeadline(t *testing.T) {
	calls := 0
	err := poll(context.Background(), time.Millisecond, func(context.Context) (bool, error) {
		calls++
		return false, fmt.Errorf("unknown command: %w", ErrNotLanded)
	})
	if !errors.Is(err, ErrNotLanded) || calls != 1 {
		t.Fatalf("permanent: %v after %d calls", err, calls)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	err = poll(ctx, time.Millisecond, func(context.Context) (bool, error) { return false, errors.New("not yet: 2 of 3") })
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "not yet: 2 of 3") {
		t.Fatalf("deadline: %v", err)
	}
	n := 0
	if err := poll(context.Background(), time.Millisecond, func(context.Context) (bool, error) { n++; return n == 3, nil }); err != nil || n != 3 {
		t.Fatalf("done on the third call: %v %d", err, n)
	}
}

func TestMissingFeature(t *testing.T) {
	if !missingFeature(`Error: unknown command "ledger" for "weft"`) || !missingFeature("Error: unknown flag: --slice") {
		t.Fatal("cobra's messages not recognised")
	}
	if missingFeature("api: cannot reach the node") {
		t.Fatal("a transient error taken for a missing feature")
	}
}

func TestFindRecipesDir(t *testing.T) {
	dir := t.TempDir()
	if _, _, err := findRecipesDir(dir, "", ""); !errors.Is(err, ErrNoRecipes) {
		t.Fatalf("empty dir: %v", err)
	}
	ex := filepath.Join(dir, "recipes", "examples")
	if err := os.MkdirAll(ex, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, f := range demoRecipes {
		if err := os.WriteFile(filepath.Join(ex, f), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if got, _, err := findRecipesDir(ex, "", ""); err != nil || got != ex {
		t.Fatalf("configured: %q %v", got, err)
	}
	// Next to the binary: DIR/bin/weft → DIR/recipes/examples.
	bin := filepath.Join(dir, "bin", "weft")
	if err := os.MkdirAll(filepath.Dir(bin), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, nil, 0o700); err != nil {
		t.Fatal(err)
	}
	t.Chdir(t.TempDir())
	if got, _, err := findRecipesDir("", bin, ""); err != nil || got != ex {
		t.Fatalf("next to the binary: %q %v", got, err)
	}
}

// An installed weft run from a folder outside the source tree, with no
// recipes next to its binary, uses the copies embedded in the binary.
func TestFindRecipesDirEmbedded(t *testing.T) {
	pkgDir, err := os.Getwd() // go test runs in the package's folder
	if err != nil {
		t.Fatal(err)
	}
	srcDir := filepath.Join(pkgDir, "..", "..", "..", "..", "recipes", "examples")
	t.Chdir(t.TempDir())
	bin := filepath.Join(t.TempDir(), "bin", "weft")
	if err := os.MkdirAll(filepath.Dir(bin), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, nil, 0o700); err != nil {
		t.Fatal(err)
	}
	if _, _, err := findRecipesDir("", bin, ""); !errors.Is(err, ErrNoRecipes) {
		t.Fatalf("no scratch folder: want ErrNoRecipes, got %v", err)
	}
	scratch := t.TempDir()
	dir, from, err := findRecipesDir("", bin, scratch)
	if err != nil {
		t.Fatal(err)
	}
	if from != "embedded in the binary" || filepath.Dir(dir) != scratch {
		t.Fatalf("got %q from %q, want a folder of %s from the binary", dir, from, scratch)
	}
	for _, f := range demoRecipes {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		r, err := recipes.Parse(f, b)
		if err != nil {
			t.Fatalf("embedded %s does not parse: %v", f, err)
		}
		// The embedded copy is the file of the source tree, byte for byte.
		src, err := os.ReadFile(filepath.Join(srcDir, f))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(b, src) {
			t.Fatalf("embedded %s differs from recipes/examples/%s", f, f)
		}
		if r.CID().String() == "" {
			t.Fatalf("%s: no CID", f)
		}
	}
	// A --recipes folder without them is still an error, never the fallback.
	if _, _, err := findRecipesDir(t.TempDir(), bin, scratch); !errors.Is(err, ErrNoRecipes) {
		t.Fatalf("configured empty folder: %v", err)
	}
}

func TestCheckStatement(t *testing.T) {
	good := `{"party":"P","role":"requester","lines":[{"receipts":3}],"total":{"receipts":3}}`
	if err := checkStatement([]byte(good)); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{`null`, `{}`, `{"party":"P","lines":[],"total":{"receipts":0}}`, `{"party":"P","lines":[],"total":{}}`} {
		if err := checkStatement([]byte(bad)); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
	if err := checkStatement([]byte(`[{"amount":1}]`)); err != nil {
		t.Errorf("other non-empty shape: %v", err)
	}
}

func TestHostReceipts(t *testing.T) {
	lines := []statementLine{
		{Instance: "i", Provider: "old", Status: "acked"},
		{Instance: "i", Provider: "new", Status: "acked"},
		{Instance: "i", Provider: "new", Status: "unconfirmed"},
		{Instance: "j", Provider: "new", Status: "acked"},
	}
	if n, acked := hostReceipts(lines, "i", "new"); n != 2 || acked != 1 {
		t.Fatalf("got %d receipts, %d acked", n, acked)
	}
}

func TestPickPortBase(t *testing.T) {
	base, err := pickPortBase(100)
	if err != nil {
		t.Fatal(err)
	}
	if base < minPortBase || base+100 > maxPortEnd {
		t.Fatalf("base %d out of range", base)
	}
	if _, err := pickPortBase(0); err == nil {
		t.Fatal("zero ports accepted")
	}
}
