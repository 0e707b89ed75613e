package p2p

import (
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/libp2p/go-libp2p/core/crypto"

	"github.com/weftgrid/weft/recipes/atomicfile"
)

// IdentityFile is the name of the identity key file in the data dir.
const IdentityFile = "identity.key"

// LoadOrCreateIdentity returns the Ed25519 key kept in dataDir/identity.key,
// creating it (mode 0600) on first use.
func LoadOrCreateIdentity(dataDir string) (crypto.PrivKey, error) {
	path := filepath.Join(dataDir, IdentityFile)
	b, err := os.ReadFile(path)
	if err == nil {
		k, err := crypto.UnmarshalPrivateKey(b)
		if err != nil {
			return nil, fmt.Errorf("p2p: identity %s: %w", path, err)
		}
		if k.Type() != crypto.Ed25519 {
			return nil, fmt.Errorf("p2p: identity %s: not an Ed25519 key", path)
		}
		return k, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("p2p: identity: %w", err)
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("p2p: identity: %w", err)
	}
	k, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		return nil, err
	}
	b, err = crypto.MarshalPrivateKey(k)
	if err != nil {
		return nil, err
	}
	if err := atomicfile.WriteFile(path, b); err != nil {
		return nil, fmt.Errorf("p2p: identity: %w", err)
	}
	return k, nil
}
