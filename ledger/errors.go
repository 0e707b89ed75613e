package ledger

import "errors"

// Sentinel errors; callers check them with errors.Is.
var (
	// ErrMalformed: bytes that do not decode to a well-formed, canonically
	// encoded value (entry, body, sync message, export or proof file).
	ErrMalformed = errors.New("ledger: malformed")
	// ErrTooLarge: input above the size limit for its type.
	ErrTooLarge = errors.New("ledger: too large")
	// ErrBadSignature: an entry's signature does not verify against its author.
	ErrBadSignature = errors.New("ledger: bad signature")
	// ErrBadAuthor: an author that is not an Ed25519 peer ID.
	ErrBadAuthor = errors.New("ledger: author is not an Ed25519 peer ID")
	// ErrCIDMismatch: bytes whose hash is not the CID they were sent under.
	ErrCIDMismatch = errors.New("ledger: CID mismatch")
	// ErrNotFound: no entry with that CID.
	ErrNotFound = errors.New("ledger: not found")
	// ErrClosed: the ledger is closed.
	ErrClosed = errors.New("ledger: closed")
	// ErrBadProof: an inclusion proof that does not hold.
	ErrBadProof = errors.New("ledger: inclusion proof does not hold")
	// ErrRejected: some received entries were rejected (the error joins why).
	ErrRejected = errors.New("ledger: rejected entries")
	// ErrInvalid: a well-formed entry whose content breaks a ledger rule
	// (for instance a receipt by someone other than the contract's provider).
	ErrInvalid = errors.New("ledger: invalid entry")
)
