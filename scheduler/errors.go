package scheduler

import "errors"

// Errors returned by this package. Wrapped errors carry details; test them
// with errors.Is.
var (
	// ErrMalformed means a message or request could not be decoded or breaks
	// a structural rule (missing field, bad length, bad enum value).
	ErrMalformed = errors.New("scheduler: malformed message")
	// ErrTooLarge means a message is over MaxMessageBytes or a field over its bound.
	ErrTooLarge = errors.New("scheduler: message too large")
	// ErrBadSignature means a signature does not verify against the signer's key.
	ErrBadSignature = errors.New("scheduler: bad signature")
	// ErrReplay means a message was already seen, is older than what is
	// known (generation, epoch), or is outside its validity window.
	ErrReplay = errors.New("scheduler: replayed or stale message")
	// ErrUnauthorized means the signer may not send this message (e.g. an
	// award by someone who is neither the requester nor a delegated guardian).
	ErrUnauthorized = errors.New("scheduler: unauthorized")
	// ErrUnknownConstraint means an SLA key that no constraint uses.
	ErrUnknownConstraint = errors.New("scheduler: unknown constraint key")
	// ErrBadConstraint means an SLA value that does not parse.
	ErrBadConstraint = errors.New("scheduler: bad constraint value")
	// ErrUnplaceable means no node accepted the request; the error text
	// carries the explanation aggregated from the declines.
	ErrUnplaceable = errors.New("scheduler: no node placed the request")
	// ErrNotFound means no instance has that name.
	ErrNotFound = errors.New("scheduler: instance not found")
	// ErrClosed means the market was closed.
	ErrClosed = errors.New("scheduler: market closed")
	// ErrInvalidRequest means a request spec that breaks a rule (bad name,
	// negative resources, unknown state).
	ErrInvalidRequest = errors.New("scheduler: invalid request")
	// ErrNotDestroyed means a purge of an instance that is not destroyed.
	ErrNotDestroyed = errors.New("scheduler: instance not destroyed")
)
