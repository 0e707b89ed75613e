package grid

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
)

// Errors of the grid package.
var (
	// ErrBadFile means a grid file failed to parse or validate.
	ErrBadFile = errors.New("grid: malformed grid file")
	// ErrBadList means a member list failed to decode or verify.
	ErrBadList = errors.New("grid: malformed member list")
	// ErrBadSignature means the member list is not signed by the founder.
	ErrBadSignature = errors.New("grid: bad signature")
)

// MaxFileSize bounds a grid file, in bytes.
const MaxFileSize = 4096

// PSKSize is the private-network key size, in bytes.
const PSKSize = 32

var nameRE = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9._-]{0,62}$`)

// File is a private grid's file. Whoever holds it can reach the network
// layer of the grid; only peers on the founder's member list get connections.
type File struct {
	// Name is the human name of the grid (letters, digits, . _ -; ≤ 63).
	Name string
	// ID identifies the grid: 32 hex digits, derived from the founder and
	// random bytes. It namespaces protocols and topics.
	ID string
	// PSK is the libp2p private-network key (32 bytes).
	PSK []byte
	// Founder is the peer ID whose key signs member lists.
	Founder peer.ID
	// Granters are the peers, besides the founder, whose ledger grants
	// count on this grid (the founder names them; optional).
	Granters []peer.ID
	// Slice is the grid's billing slice length (optional; 0: the nodes'
	// [ledger] slice). Every node of the grid bills in slices of this
	// length and agrees no contract with another.
	Slice time.Duration
}

type fileTOML struct {
	Name     string   `toml:"name"`
	ID       string   `toml:"id"`
	Founder  string   `toml:"founder"`
	PSK      string   `toml:"psk"`
	Granters []string `toml:"granters,omitempty"`
	Slice    string   `toml:"slice,omitempty"`
}

// New creates a grid named name founded by founder, with a fresh key.
func New(name string, founder peer.ID) (File, error) {
	psk := make([]byte, PSKSize)
	if _, err := rand.Read(psk); err != nil {
		return File{}, err
	}
	nonce := make([]byte, 16)
	if _, err := rand.Read(nonce); err != nil {
		return File{}, err
	}
	h := sha256.New()
	h.Write([]byte("weft/grid/id/v1\x00"))
	h.Write([]byte(founder))
	h.Write(nonce)
	f := File{Name: name, ID: hex.EncodeToString(h.Sum(nil)[:16]), PSK: psk, Founder: founder}
	return f, f.Validate()
}

// Validate checks every field.
func (f File) Validate() error {
	if !nameRE.MatchString(f.Name) {
		return fmt.Errorf("%w: name %q: use 1-63 letters, digits, '.', '_' or '-'", ErrBadFile, f.Name)
	}
	if len(f.ID) != 32 {
		return fmt.Errorf("%w: id must be 32 hex digits", ErrBadFile)
	}
	if _, err := hex.DecodeString(f.ID); err != nil {
		return fmt.Errorf("%w: id: %w", ErrBadFile, err)
	}
	if len(f.PSK) != PSKSize {
		return fmt.Errorf("%w: psk must be %d bytes", ErrBadFile, PSKSize)
	}
	pk, err := f.Founder.ExtractPublicKey()
	if err != nil {
		return fmt.Errorf("%w: founder: %w", ErrBadFile, err)
	}
	if pk.Type() != crypto.Ed25519 {
		return fmt.Errorf("%w: founder key is not Ed25519", ErrBadFile)
	}
	for _, g := range f.Granters {
		if pk, err := g.ExtractPublicKey(); err != nil || pk.Type() != crypto.Ed25519 {
			return fmt.Errorf("%w: granter %s: not an Ed25519 peer ID", ErrBadFile, g)
		}
	}
	if f.Slice != 0 && (f.Slice < 100*time.Millisecond || f.Slice > 24*time.Hour) {
		return fmt.Errorf("%w: slice %s outside [100ms, 24h]", ErrBadFile, f.Slice)
	}
	return nil
}

// Encode returns the grid file's text (TOML).
func (f File) Encode() []byte {
	var b bytes.Buffer
	b.WriteString("# weft grid file. Keep it secret: it holds the grid's private-network key.\n")
	b.WriteString("# Members start their node with: weft node --grid THIS_FILE\n")
	t := fileTOML{Name: f.Name, ID: f.ID, Founder: f.Founder.String(), PSK: hex.EncodeToString(f.PSK)}
	for _, g := range f.Granters {
		t.Granters = append(t.Granters, g.String())
	}
	if f.Slice != 0 {
		t.Slice = f.Slice.String()
	}
	_ = toml.NewEncoder(&b).Encode(t)
	return b.Bytes()
}

// Parse decodes and validates a grid file.
func Parse(b []byte) (File, error) {
	if len(b) > MaxFileSize {
		return File{}, fmt.Errorf("%w: larger than %d bytes", ErrBadFile, MaxFileSize)
	}
	var t fileTOML
	md, err := toml.Decode(string(b), &t)
	if err != nil {
		return File{}, fmt.Errorf("%w: %w", ErrBadFile, err)
	}
	if und := md.Undecoded(); len(und) > 0 {
		return File{}, fmt.Errorf("%w: unknown key %s", ErrBadFile, und[0].String())
	}
	psk, err := hex.DecodeString(strings.TrimSpace(t.PSK))
	if err != nil {
		return File{}, fmt.Errorf("%w: psk: %w", ErrBadFile, err)
	}
	founder, err := peer.Decode(t.Founder)
	if err != nil {
		return File{}, fmt.Errorf("%w: founder: %w", ErrBadFile, err)
	}
	f := File{Name: t.Name, ID: strings.ToLower(t.ID), PSK: psk, Founder: founder}
	for _, g := range t.Granters {
		p, err := peer.Decode(g)
		if err != nil {
			return File{}, fmt.Errorf("%w: granter: %w", ErrBadFile, err)
		}
		f.Granters = append(f.Granters, p)
	}
	if t.Slice != "" {
		if f.Slice, err = time.ParseDuration(t.Slice); err != nil {
			return File{}, fmt.Errorf("%w: slice: %w", ErrBadFile, err)
		}
	}
	return f, f.Validate()
}

// ReadFile reads and parses the grid file at path.
func ReadFile(path string) (File, error) {
	fh, err := os.Open(path)
	if err != nil {
		return File{}, fmt.Errorf("grid: %w", err)
	}
	defer fh.Close()
	b := make([]byte, MaxFileSize+1)
	n, _ := fh.Read(b)
	for n < len(b) {
		m, err := fh.Read(b[n:])
		n += m
		if err != nil || m == 0 {
			break
		}
	}
	f, err := Parse(b[:n])
	if err != nil {
		return File{}, fmt.Errorf("%s: %w", path, err)
	}
	return f, nil
}

// WriteFile writes the grid file to path with mode 0600; it refuses to
// overwrite an existing file.
func (f File) WriteFile(path string) error {
	fh, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("grid: %w", err)
	}
	if _, err := fh.Write(f.Encode()); err != nil {
		fh.Close()
		return fmt.Errorf("grid: %w", err)
	}
	return fh.Close()
}
