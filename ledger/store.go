package ledger

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"runtime/debug"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// store keeps entries in a bbolt file. Layout:
//
//	bucket "authors": author peer ID bytes -> uint32 author number (BE)
//	bucket "entries": author number (4, BE) | seq (8, BE) | sha256(entry)[:16] -> entry bytes
//
// Keys sort by author then seq, so an author's log is one range scan and a
// catch-up (which arrives author by author, in seq order) appends at the end
// of the B+tree. The trailing hash keeps both entries of an equivocation.
//
// Durability: every commit (one per Append, one per ingest batch) is a bbolt
// read-write transaction, which fdatasyncs the file before returning. An
// entry is acknowledged (Append returns, or a received entry is forwarded)
// only after its commit returned, so kill -9 or power loss never loses it.
type store struct {
	db      *bolt.DB
	authors map[string]uint32
}

var (
	bucketAuthors = []byte("authors")
	bucketEntries = []byte("entries")
)

func openStore(path string, readOnly bool) (*store, error) {
	if readOnly {
		if _, err := os.Stat(path); err != nil {
			return nil, fmt.Errorf("ledger: open %s: %w", path, err)
		}
	}
	// bbolt treats a damaged page as a broken invariant and panics; on a
	// read-write open it does so in a goroutine of its own, while it
	// rebuilds the free list (NoFreelistSync), where no recover can catch
	// it and the whole node dies. So walk every page of an existing file
	// first, read-only and in this goroutine, turning a panic or a memory
	// fault into an error.
	if fi, err := os.Stat(path); err == nil && fi.Size() > 0 {
		if err := checkFile(path); err != nil {
			return nil, fmt.Errorf("ledger: open %s: %w", path, err)
		}
	}
	var db *bolt.DB
	err := guard(func() (err error) {
		db, err = bolt.Open(path, 0o600, &bolt.Options{Timeout: 5 * time.Second, ReadOnly: readOnly, FreelistType: bolt.FreelistMapType, NoFreelistSync: true})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("ledger: open %s: %w", path, err)
	}
	s := &store{db: db, authors: map[string]uint32{}}
	txf := db.Update
	if readOnly {
		txf = db.View
	}
	err = guard(func() error {
		return txf(func(tx *bolt.Tx) error {
			if !readOnly {
				if _, err := tx.CreateBucketIfNotExists(bucketAuthors); err != nil {
					return err
				}
				if _, err := tx.CreateBucketIfNotExists(bucketEntries); err != nil {
					return err
				}
			}
			ab := tx.Bucket(bucketAuthors)
			if ab == nil || tx.Bucket(bucketEntries) == nil {
				return fmt.Errorf("%w: not a ledger file", ErrMalformed)
			}
			return ab.ForEach(func(k, v []byte) error {
				if len(v) != 4 {
					return fmt.Errorf("%w: author record", ErrMalformed)
				}
				s.authors[string(k)] = binary.BigEndian.Uint32(v)
				return nil
			})
		})
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("ledger: open %s: %w", path, err)
	}
	return s, nil
}

// load decodes every stored entry (in key order) and passes it to fn. It
// checks each entry against the hash in its key, so a corrupted page is
// reported rather than silently loaded. Signatures were verified before the
// entries were stored and are not checked again.
func (s *store) load(fn func(*Entry) error) error {
	return guard(func() error { return s.loadUnguarded(fn) })
}

func (s *store) loadUnguarded(fn func(*Entry) error) error {
	return s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketEntries).ForEach(func(k, v []byte) error {
			sum := sha256.Sum256(v)
			if len(k) != 28 || !bytes.Equal(k[12:], sum[:16]) {
				return fmt.Errorf("%w: stored entry under key %x does not match its hash", ErrCIDMismatch, k)
			}
			e, err := Decode(bytes.Clone(v))
			if err != nil {
				return fmt.Errorf("stored entry %x: %w", k, err)
			}
			return fn(e)
		})
	})
}

// checkFile opens the file at path read-only (which does not rebuild the
// free list) and reads every page reachable from its root, so that a
// damaged file is an error here rather than a panic inside bbolt later.
func checkFile(path string) error {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 5 * time.Second, ReadOnly: true})
	if err != nil {
		return err
	}
	defer db.Close()
	return guard(func() error {
		return db.View(func(tx *bolt.Tx) error {
			return tx.ForEach(func(_ []byte, b *bolt.Bucket) error { return walkBucket(b) })
		})
	})
}

// walkBucket visits every key of b and of its nested buckets: every branch
// and leaf page under b.
func walkBucket(b *bolt.Bucket) error {
	c := b.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		if v != nil {
			continue
		}
		if sub := b.Bucket(k); sub != nil {
			if err := walkBucket(sub); err != nil {
				return err
			}
		}
	}
	return nil
}

// guard runs fn, turning a panic (bbolt's assertions on a damaged page) or
// a fault on the memory-mapped file into an error wrapping ErrMalformed.
func guard(fn func() error) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: damaged ledger file (restore it from a backup, or move it away to resync from peers): %v", ErrMalformed, r)
		}
	}()
	return fn()
}

// put stores entries in one transaction (one fsync).
func (s *store) put(es []*Entry) error {
	if len(es) == 0 {
		return nil
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		ab, eb := tx.Bucket(bucketAuthors), tx.Bucket(bucketEntries)
		eb.FillPercent = 0.9
		newAuthors := map[string]uint32{}
		key := make([]byte, 28)
		for _, e := range es {
			n, ok := s.authors[string(e.Author)]
			if !ok {
				if n, ok = newAuthors[string(e.Author)]; !ok {
					n = uint32(len(s.authors) + len(newAuthors) + 1)
					var v [4]byte
					binary.BigEndian.PutUint32(v[:], n)
					if err := ab.Put([]byte(e.Author), v[:]); err != nil {
						return err
					}
					newAuthors[string(e.Author)] = n
				}
			}
			binary.BigEndian.PutUint32(key[:4], n)
			binary.BigEndian.PutUint64(key[4:12], e.Seq)
			copy(key[12:], e.digest()[:16])
			if err := eb.Put(key, e.raw); err != nil {
				return err
			}
		}
		// Publish new author numbers only once the transaction commits.
		tx.OnCommit(func() {
			for k, v := range newAuthors {
				s.authors[k] = v
			}
		})
		return nil
	})
}

// size is the file size in bytes.
func (s *store) size() (int64, error) {
	var n int64
	err := s.db.View(func(tx *bolt.Tx) error { n = tx.Size(); return nil })
	return n, err
}

func (s *store) close() error {
	if s == nil || s.db == nil {
		return nil
	}
	err := s.db.Close()
	if errors.Is(err, berrors.ErrDatabaseNotOpen) {
		return nil
	}
	return err
}
