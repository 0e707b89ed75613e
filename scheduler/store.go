package scheduler

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/weftgrid/weft/recipes/atomicfile"
)

// Store persists what the market must not forget across a restart: the
// requests this node made or guards (with their current contract) and the
// contracts of the copies it hosts, so a restarted requester still knows
// its instances and a restarted host can be fenced. Calls come from the
// state loop and should be fast.
type Store interface {
	// Put stores value under key (replacing it).
	Put(key string, value []byte) error
	// Delete removes key (no error if absent).
	Delete(key string) error
	// Load returns everything stored.
	Load() (map[string][]byte, error)
}

// DirStore is a Store keeping one file per key in a directory (written to
// a temporary file, synced, then renamed).
type DirStore struct{ dir string }

var _ Store = (*DirStore)(nil)

// NewDirStore returns a store in dir, creating it.
func NewDirStore(dir string) (*DirStore, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	return &DirStore{dir: dir}, nil
}

func (s *DirStore) path(key string) (string, error) {
	if key == "" || strings.ContainsAny(key, `/\`) || strings.HasPrefix(key, ".") {
		return "", fmt.Errorf("%w: store key %q", ErrInvalidRequest, key)
	}
	return filepath.Join(s.dir, key), nil
}

// Put implements Store.
func (s *DirStore) Put(key string, value []byte) error {
	p, err := s.path(key)
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(p, value)
}

// Delete implements Store.
func (s *DirStore) Delete(key string) error {
	p, err := s.path(key)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// Load implements Store.
func (s *DirStore) Load() (map[string][]byte, error) {
	ents, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, err
	}
	out := map[string][]byte{}
	for _, e := range ents {
		if e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(s.dir, e.Name()))
		if err != nil {
			return nil, err
		}
		out[e.Name()] = b
	}
	return out, nil
}

// savedRecord is a record as stored ("r-" + instance ID).
type savedRecord struct {
	Request  Signed    `cbor:"1,keyasint"`
	Contract *Contract `cbor:"2,keyasint,omitempty"`
	Mine     bool      `cbor:"3,keyasint,omitempty"`
	MaxEpoch uint64    `cbor:"4,keyasint,omitempty"`
	Failed   string    `cbor:"5,keyasint,omitempty"`
	// Pending is an award waiting for its accept (restored as withdrawn:
	// the auction that would have taken the accept is gone); Withdrawn are
	// awards that timed out.
	Pending   *awardRef  `cbor:"6,keyasint,omitempty"`
	Withdrawn []awardRef `cbor:"7,keyasint,omitempty"`
}

func (s *savedRecord) validate() error {
	if len(s.Withdrawn) > maxWithdrawn {
		return fmt.Errorf("%w: %d withdrawn awards", ErrMalformed, len(s.Withdrawn))
	}
	return nil
}

// savedHosted is a hosted copy as stored ("h-" + instance ID).
type savedHosted struct {
	Contract Contract `cbor:"1,keyasint"`
	// Request is the latest generation applied (may be newer than the award's).
	Request Signed `cbor:"2,keyasint"`
	Fenced  bool   `cbor:"3,keyasint,omitempty"`
	// Unconfirmed: the auctioneer has not confirmed the contract yet.
	Unconfirmed bool `cbor:"4,keyasint,omitempty"`
}

func (m *Market) saveRecord(rec *record) {
	if m.d.Store == nil {
		return
	}
	s := savedRecord{Request: rec.env, Contract: rec.contract, Mine: rec.mine, MaxEpoch: rec.maxEpoch, Failed: rec.failed,
		Pending: rec.pending, Withdrawn: rec.withdrawn}
	m.io.queue(effect{key: "r-" + string(rec.req.Instance), value: marshal(&s)})
}

func (m *Market) saveHosted(h *hosted) {
	if m.d.Store == nil {
		return
	}
	reqEnv := h.reqEnv
	if reqEnv.Kind == KindInvalid {
		reqEnv = h.contract.Info().Award.Request
	}
	s := savedHosted{Contract: *h.contract, Request: reqEnv, Fenced: h.fenced, Unconfirmed: !h.confirmed}
	m.io.queue(effect{key: "h-" + string(h.req.Instance), value: marshal(&s)})
}

func (m *Market) dropHosted(id InstanceID) {
	delete(m.hosted, id)
	if m.d.Store != nil {
		m.io.queue(effect{key: "h-" + string(id), del: true})
	}
}

// restore loads the store (on Start, before the loop runs). Entries that do
// not verify are skipped and logged.
func (m *Market) restore() error {
	if m.d.Store == nil {
		return nil
	}
	all, err := m.d.Store.Load()
	if err != nil {
		return fmt.Errorf("scheduler: loading the market store: %w", err)
	}
	for key, b := range all {
		switch {
		case strings.HasPrefix(key, "r-"):
			rec, err := decodeRecord(InstanceID(key[2:]), b, m.self)
			if err != nil {
				m.log.Warn("market: skipping stored record", "key", key, "err", err)
				continue
			}
			m.records[rec.req.Instance] = rec
			if !rec.mine {
				m.guarded[rec.req.Requester]++
			}
			if rec.contract != nil {
				m.best[rec.req.Instance] = rec.contract
			}
		case strings.HasPrefix(key, "h-"):
			h, err := decodeHosted(InstanceID(key[2:]), b, m.self)
			if err != nil {
				m.log.Warn("market: skipping stored copy", "key", key, "err", err)
				continue
			}
			m.hosted[h.req.Instance] = h
			if b := m.best[h.req.Instance]; b == nil || Wins(h.contract, b) {
				m.best[h.req.Instance] = h.contract
			}
		}
	}
	return nil
}

// decodeRecord decodes and verifies a stored record of instance id.
func decodeRecord(id InstanceID, b []byte, self peer.ID) (*record, error) {
	var s savedRecord
	if err := unmarshal(b, &s); err != nil {
		return nil, err
	}
	req, err := OpenRequest(&s.Request)
	if err != nil {
		return nil, err
	}
	if req.Instance != id {
		return nil, fmt.Errorf("%w: stored under another instance ID", ErrMalformed)
	}
	if err := s.validate(); err != nil {
		return nil, err
	}
	rec := &record{mine: s.Mine && req.Requester == self, req: req, env: s.Request, maxEpoch: s.MaxEpoch, failed: s.Failed,
		withdrawn: s.Withdrawn}
	if s.Pending != nil {
		if len(rec.withdrawn) >= maxWithdrawn {
			rec.withdrawn = rec.withdrawn[1:]
		}
		rec.withdrawn = append(rec.withdrawn, *s.Pending)
	}
	if s.Contract != nil {
		if err := OpenContract(s.Contract); err != nil {
			return nil, err
		}
		if s.Contract.Instance() != id {
			return nil, fmt.Errorf("%w: contract of another instance", ErrMalformed)
		}
		rec.contract = s.Contract
	}
	return rec, nil
}

// decodeHosted decodes and verifies a stored hosted copy of instance id.
func decodeHosted(id InstanceID, b []byte, self peer.ID) (*hosted, error) {
	var s savedHosted
	if err := unmarshal(b, &s); err != nil {
		return nil, err
	}
	req, err := OpenRequest(&s.Request)
	if err != nil {
		return nil, err
	}
	if err := OpenContract(&s.Contract); err != nil {
		return nil, err
	}
	if s.Contract.Provider() != self || s.Contract.Instance() != id || req.Instance != id {
		return nil, fmt.Errorf("%w: stored copy of another node or instance", ErrMalformed)
	}
	c := s.Contract
	h := &hosted{contract: &c, req: req, reqEnv: s.Request, fenced: s.Fenced, confirmed: !s.Unconfirmed}
	h.spec = specOf(req, c.Epoch())
	if h.fenced {
		h.spec.State = StateDestroyed
	}
	return h, nil
}
