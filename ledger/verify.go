package ledger

import (
	"fmt"
	"sync"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/libp2p/go-libp2p/core/peer"
	voi "github.com/oasisprotocol/curve25519-voi/primitives/ed25519"
)

// Signature rules. Every node and every auditor must accept exactly the
// same set of entries, or replicas that hold the same entries could still
// disagree on which of them are valid and never reach one root. Ledger
// signatures are therefore checked under one fixed rule, ZIP-215
// (cofactored verification; small-order and non-canonical point encodings
// allowed, non-canonical S refused), which has two properties the
// standard library's rule lacks:
//
//   - batch verification and one-by-one verification accept exactly the
//     same signatures, so a node that batch-verifies a catch-up and a node
//     that checks gossip one entry at a time agree on every entry;
//   - it is a superset of what crypto/ed25519 accepts, so every signature
//     made by a libp2p Ed25519 key (crypto/ed25519.Sign) verifies, and no
//     entry a node stored before this rule is refused after it.
//
// The verifier is curve25519-voi's, which implements ZIP-215 for both
// paths, keeps each author's public key decompressed and expanded
// (authors are few and sign many entries), and verifies batches with one
// multi-scalar multiplication.
var verifyOpts = &voi.Options{Verify: voi.VerifyOptionsZIP_215}

// batchMin is the smallest group worth a batch verification; below it the
// entries are verified one by one.
const batchMin = 4

// batchVerifiers keeps batch verifiers (and their entry arrays, ~300 KiB
// for a batch of 1,024) for reuse.
var batchVerifiers = sync.Pool{New: func() any { return voi.NewBatchVerifierWithCapacity(1024) }}

// expandedKeys caches the expanded public key (~1.5 KiB) of authors whose
// signatures verified. It is bounded, so entries under random author IDs
// cost CPU but cannot grow memory; only keys that produced a valid
// signature are kept, so they cannot evict the grid's real authors either.
var expandedKeys = func() *lru.Cache[peer.ID, *voi.ExpandedPublicKey] {
	c, err := lru.New[peer.ID, *voi.ExpandedPublicKey](4096)
	if err != nil {
		panic(err)
	}
	return c
}()

// expandedKey returns the author's expanded public key and whether it came
// from the cache.
func expandedKey(author peer.ID) (*voi.ExpandedPublicKey, bool, error) {
	if k, ok := expandedKeys.Get(author); ok {
		return k, true, nil
	}
	pub, err := pubKeyOf(author)
	if err != nil {
		return nil, false, err
	}
	k, err := voi.NewExpandedPublicKey(voi.PublicKey(pub))
	if err != nil {
		return nil, false, fmt.Errorf("%w: %w", ErrBadAuthor, err)
	}
	return k, false, nil
}

// verifySig checks one signature over msg (EntryDomain || unsigned bytes).
func verifySig(author peer.ID, msg, sig []byte) (bool, error) {
	k, cached, err := expandedKey(author)
	if err != nil {
		return false, err
	}
	ok := voi.VerifyExpandedWithOptions(k, msg, sig, verifyOpts)
	if ok && !cached {
		expandedKeys.Add(author, k)
	}
	return ok, nil
}

// verifyEntries checks the signatures of decoded entries, as one batch
// when there are enough of them, and returns one error per entry (nil when
// its signature is valid). The result is the same as calling Verify on
// each entry: a batch that fails is verified again one by one (by the
// batch verifier), so a bad entry is named and never spoils the good ones
// next to it.
func verifyEntries(es []*Entry) []error {
	errs := make([]error, len(es))
	if len(es) < batchMin {
		for i, e := range es {
			errs[i] = e.Verify()
		}
		return errs
	}
	bv := batchVerifiers.Get().(*voi.BatchVerifier).Reset()
	defer func() { batchVerifiers.Put(bv.Reset()) }()
	// Every message in one buffer: the verifier keeps them until Verify.
	size := 0
	for _, e := range es {
		size += len(EntryDomain) + len(e.raw)
	}
	buf := make([]byte, 0, size)
	idx := make([]int, 0, len(es)) // batch position -> index in es
	var fresh map[peer.ID]*voi.ExpandedPublicKey
	for i, e := range es {
		k, ok := fresh[e.Author]
		if !ok {
			var cached bool
			var err error
			if k, cached, err = expandedKey(e.Author); err != nil {
				errs[i] = err
				continue
			}
			if !cached {
				if fresh == nil {
					fresh = map[peer.ID]*voi.ExpandedPublicKey{}
				}
				fresh[e.Author] = k
			}
		}
		start := len(buf)
		grown, err := e.appendSignedMessage(buf)
		if err != nil {
			errs[i] = fmt.Errorf("%w: %w", ErrMalformed, err)
			continue
		}
		buf = grown
		bv.AddExpandedWithOptions(k, buf[start:len(buf):len(buf)], e.Sig, verifyOpts)
		idx = append(idx, i)
	}
	if len(idx) == 0 {
		return errs
	}
	_, valid := bv.Verify(nil)
	for j, i := range idx {
		e := es[i]
		if !valid[j] {
			errs[i] = fmt.Errorf("%w: entry %s by %s", ErrBadSignature, e.id, e.Author)
			continue
		}
		if k, ok := fresh[e.Author]; ok {
			// Cache a new author's key once one of its signatures verified.
			expandedKeys.Add(e.Author, k)
			delete(fresh, e.Author)
		}
	}
	return errs
}
