package content

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/weftgrid/weft/cmd/weft/internal/config"
	"github.com/weftgrid/weft/recipes/store"
)

// Without a p2p host the service stores and serves local content to the
// partitions (batch results in, artifacts out) and refuses what it would
// have to fetch.
func TestServiceWithoutHostServesLocalContent(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, t.TempDir(), config.Default().Recipes, nil, slog.Default())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.Transfer() != nil {
		t.Fatal("a transfer service without a host")
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "out.txt"), []byte("result"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := s.PutDir(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	blob, err := s.Store.PutFile(filepath.Join(dir, "out.txt"))
	if err != nil {
		t.Fatal(err)
	}
	dest := filepath.Join(t.TempDir(), "artifact")
	if err := s.FetchFile(ctx, blob.String(), dest); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(dest); err != nil || string(b) != "result" {
		t.Fatalf("fetched artifact: %q %v", b, err)
	}
	if _, err := s.RecipeByCID(ctx, "not-a-cid"); !errors.Is(err, store.ErrBadCID) {
		t.Fatalf("a bad recipe CID: %v", err)
	}
	if _, err := s.RecipeByCID(ctx, c); err == nil {
		t.Fatal("a directory tree served as a recipe")
	}
	if st := s.Status(); st.Transfer || st.ContentTransfer != nil {
		t.Fatalf("status %+v", st)
	}
}
