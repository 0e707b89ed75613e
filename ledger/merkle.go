package ledger

import (
	"bytes"
	"crypto"
	_ "crypto/sha256" // registers SHA-256 for rfc6962.New
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/bits"
	"os"
	"slices"
	"sort"
	"sync"

	"github.com/ipfs/go-cid"
	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
)

// The ledger root is the RFC 6962 Merkle tree hash over the binary CIDs of
// every entry, sorted bytewise: the same set of entries gives the same root
// on every node, whatever order they arrived in.
var hasher = rfc6962.New(crypto.SHA256)

// leaves merges pending CIDs into the sorted leaf list and returns it.
func (s *Set) leaves() [][]byte {
	if len(s.pending) > 0 {
		sortCIDs(s.pending)
		if len(s.sorted) == 0 {
			s.sorted, s.pending = s.pending, nil
		} else {
			merged := make([][]byte, 0, len(s.sorted)+len(s.pending))
			i, j := 0, 0
			for i < len(s.sorted) || j < len(s.pending) {
				if j == len(s.pending) || (i < len(s.sorted) && bytes.Compare(s.sorted[i], s.pending[j]) < 0) {
					merged = append(merged, s.sorted[i])
					i++
				} else {
					merged = append(merged, s.pending[j])
					j++
				}
			}
			s.sorted, s.pending = merged, nil
		}
	}
	return s.sorted
}

// Root returns the Merkle root over the set (the RFC 6962 empty root when empty).
func (s *Set) Root() []byte {
	if s.root != nil {
		return s.root
	}
	s.root = rootOf(s.leaves())
	return s.root
}

// RootHex is Root in lower-case hex.
func (s *Set) RootHex() string { return hex.EncodeToString(s.Root()) }

func rootOf(leaves [][]byte) []byte {
	if len(leaves) == 0 {
		return hasher.EmptyRoot()
	}
	rf := compact.RangeFactory{Hash: hasher.HashChildren}
	// Large trees: the left part (a power of two) and the rest are hashed
	// on two goroutines and joined, as RFC 6962 splits a tree.
	split := 0
	if len(leaves) >= parallelMin {
		split = 1 << (bits.Len(uint(len(leaves)-1)) - 1)
	}
	left := rf.NewEmptyRange(0)
	right := rf.NewEmptyRange(uint64(split))
	var wg sync.WaitGroup
	wg.Go(func() { appendLeaves(right, leaves[split:]) })
	appendLeaves(left, leaves[:split])
	wg.Wait()
	if err := left.AppendRange(right, nil); err != nil {
		panic(err) // cannot happen: right starts where left ends
	}
	root, err := left.GetRootHash(nil)
	if err != nil {
		panic(err)
	}
	return root
}

// parallelMin is the number of leaves from which sorting and hashing are
// split over two goroutines.
const parallelMin = 1 << 14

func appendLeaves(r *compact.Range, leaves [][]byte) {
	for _, l := range leaves {
		if err := r.Append(hasher.HashLeaf(l), nil); err != nil {
			panic(err) // cannot happen: appending at the range's end
		}
	}
}

// sortCIDs sorts CID bytes (two halves on two goroutines when large).
func sortCIDs(l [][]byte) {
	if len(l) < parallelMin {
		slices.SortFunc(l, bytes.Compare)
		return
	}
	a, b := l[:len(l)/2], l[len(l)/2:]
	var wg sync.WaitGroup
	wg.Go(func() { slices.SortFunc(b, bytes.Compare) })
	slices.SortFunc(a, bytes.Compare)
	wg.Wait()
	merged := make([][]byte, 0, len(l))
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		if bytes.Compare(a[i], b[j]) <= 0 {
			merged = append(merged, a[i])
			i++
		} else {
			merged = append(merged, b[j])
			j++
		}
	}
	merged = append(append(merged, a[i:]...), b[j:]...)
	copy(l, merged)
}

// RootOf returns the root over a list of CIDs, in any order.
func RootOf(cids []cid.Cid) []byte {
	l := make([][]byte, len(cids))
	for i, c := range cids {
		l[i] = c.Bytes()
	}
	sortCIDs(l)
	return rootOf(l)
}

// InclusionProof says that an entry is in the ledger whose root is Root.
// It verifies offline: Verify needs nothing but the proof itself.
type InclusionProof struct {
	// Format names this file format.
	Format string `json:"format"`
	// CID is the entry's CID.
	CID string `json:"cid"`
	// Entry is the entry's signed bytes (optional; when present Verify checks
	// that they hash to CID and that the signature holds).
	Entry []byte `json:"entry,omitempty"`
	// Index is the leaf index of CID among the sorted CIDs.
	Index uint64 `json:"index"`
	// Size is the number of entries under Root.
	Size uint64 `json:"size"`
	// Root is the ledger root, hex.
	Root string `json:"root"`
	// Hashes is the RFC 6962 audit path, hex, leaf to root.
	Hashes []string `json:"hashes"`
}

// ProofFormat is InclusionProof.Format.
const ProofFormat = "weft-ledger-proof/v1"

// Prove returns an inclusion proof of the entry c against the current root.
func (s *Set) Prove(c cid.Cid) (*InclusionProof, error) {
	e, ok := s.entries[c]
	if !ok {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, c)
	}
	leaves := s.leaves()
	key := c.Bytes()
	idx := sort.Search(len(leaves), func(i int) bool { return bytes.Compare(leaves[i], key) >= 0 })
	if idx == len(leaves) || !bytes.Equal(leaves[idx], key) {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, c)
	}
	size := uint64(len(leaves))
	nodes, err := proof.Inclusion(uint64(idx), size)
	if err != nil {
		return nil, err
	}
	hashes := make([][]byte, len(nodes.IDs))
	for i, id := range nodes.IDs {
		// Each ID is a perfect subtree: its hash is the tree hash of its leaves.
		b, e := id.Coverage()
		if e > size || b >= e {
			return nil, fmt.Errorf("ledger: proof node %+v outside tree of %d", id, size)
		}
		hashes[i] = rootOf(leaves[b:e])
	}
	if hashes, err = nodes.Rehash(hashes, hasher.HashChildren); err != nil {
		return nil, err
	}
	p := &InclusionProof{Format: ProofFormat, CID: c.String(), Entry: slices.Clone(e.raw), Index: uint64(idx), Size: size, Root: s.RootHex()}
	for _, h := range hashes {
		p.Hashes = append(p.Hashes, hex.EncodeToString(h))
	}
	return p, nil
}

// Verify checks the proof: the audit path leads from the CID's leaf to Root,
// and, when Entry is present, the entry hashes to CID and its signature holds.
func (p *InclusionProof) Verify() error {
	if p.Format != ProofFormat {
		return fmt.Errorf("%w: format %q", ErrMalformed, p.Format)
	}
	c, err := cid.Decode(p.CID)
	if err != nil {
		return fmt.Errorf("%w: cid: %w", ErrMalformed, err)
	}
	root, err := hex.DecodeString(p.Root)
	if err != nil {
		return fmt.Errorf("%w: root: %w", ErrMalformed, err)
	}
	if len(p.Hashes) > 64 {
		return fmt.Errorf("%w: %d hashes", ErrTooLarge, len(p.Hashes))
	}
	path := make([][]byte, len(p.Hashes))
	for i, h := range p.Hashes {
		if path[i], err = hex.DecodeString(h); err != nil {
			return fmt.Errorf("%w: hash %d: %w", ErrMalformed, i, err)
		}
	}
	if len(p.Entry) > 0 {
		e, err := DecodeVerified(p.Entry)
		if err != nil {
			return err
		}
		if !e.CID().Equals(c) {
			return fmt.Errorf("%w: entry hashes to %s, proof names %s", ErrCIDMismatch, e.CID(), c)
		}
	}
	if err := proof.VerifyInclusion(hasher, p.Index, p.Size, hasher.HashLeaf(c.Bytes()), path, root); err != nil {
		return fmt.Errorf("%w: %w", ErrBadProof, err)
	}
	return nil
}

// MaxProofFile bounds a proof file, in bytes.
const MaxProofFile = 1 << 20

// ParseProof decodes a proof file's bytes (JSON) without verifying it.
func ParseProof(b []byte) (*InclusionProof, error) {
	if len(b) > MaxProofFile {
		return nil, fmt.Errorf("%w: proof of %d bytes", ErrTooLarge, len(b))
	}
	var p InclusionProof
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return nil, fmt.Errorf("%w: proof: %w", ErrMalformed, err)
	}
	if p.Format != ProofFormat {
		return nil, fmt.Errorf("%w: proof format %q", ErrMalformed, p.Format)
	}
	return &p, nil
}

// ReadProof reads and decodes a proof file.
func ReadProof(path string) (*InclusionProof, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, MaxProofFile+1))
	if err != nil {
		return nil, err
	}
	return ParseProof(b)
}
