package replica

import (
	"encoding/json"
	"errors"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// BoltStore is a [Store] on disk in one bucket of a bbolt database: each
// Put is a committed, fsynced transaction, so what a node acknowledged
// survives a crash of its process. Two BoltStores on two buckets of one
// database serve as a node's records and hints. The caller opens and
// closes the database; a BoltStore is safe for concurrent use.
type BoltStore struct {
	db     *bolt.DB
	bucket []byte
}

var _ Store = (*BoltStore)(nil)

// NewBoltStore returns a store on the named bucket of db, creating the
// bucket if needed.
func NewBoltStore(db *bolt.DB, bucket string) (*BoltStore, error) {
	if db == nil || bucket == "" {
		return nil, fmt.Errorf("%w: a bolt store needs a database and a bucket name", ErrInvalidArgument)
	}
	err := db.Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists([]byte(bucket))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("replica: bolt bucket %q: %w", bucket, err)
	}
	return &BoltStore{db: db, bucket: []byte(bucket)}, nil
}

// errCorrupt reports a stored record that does not decode.
var errCorrupt = errors.New("replica: stored record does not decode")

// Get returns the record of key and whether there is one.
func (s *BoltStore) Get(key string) (Record, bool, error) {
	var r Record
	var ok bool
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(s.bucket).Get([]byte(key))
		if b == nil {
			return nil
		}
		ok = true
		if err := json.Unmarshal(b, &r); err != nil {
			return fmt.Errorf("%w: key %q: %w", errCorrupt, key, err)
		}
		return nil
	})
	return r, ok, err
}

// Put stores r as the record of key in one committed transaction.
func (s *BoltStore) Put(key string, r Record) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	return s.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(s.bucket).Put([]byte(key), b) })
}

// Delete removes the record of key.
func (s *BoltStore) Delete(key string) error {
	return s.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(s.bucket).Delete([]byte(key)) })
}

// Range calls fn for every record in key order until fn returns false,
// inside one read transaction.
func (s *BoltStore) Range(fn func(key string, r Record) bool) error {
	return s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(s.bucket).Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			var r Record
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("%w: key %q: %w", errCorrupt, k, err)
			}
			if !fn(string(k), r) {
				return nil
			}
		}
		return nil
	})
}
