package order

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"sort"

	bolt "go.etcd.io/bbolt"
)

// Bucket names in the log's bbolt file.
var (
	bucketEvents = []byte("events") // order id → sub-bucket: seq (8 bytes) → event
	bucketActive = []byte("active") // order id → "" while the order is not final
	bucketOutbox = []byte("outbox") // sequence (8 bytes) → event, until relayed
)

// ErrConflict: an append expected a version the order no longer has —
// someone else appended first. Reload and decide again.
var ErrConflict = errors.New("order: version conflict")

// ErrNotFound: no order with that id.
var ErrNotFound = errors.New("order: not found")

// Log is the event store of one shard of orders: an append-only history per
// order, an index of unfinished orders and a transactional outbox, in one
// bbolt file on disk. Log is safe for concurrent use.
type Log struct {
	db   *bolt.DB
	wake chan struct{} // signalled after every append, for the relay
}

// OpenLog opens (creating if needed) the log in the file at path.
func OpenLog(path string) (*Log, error) {
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		return nil, fmt.Errorf("order: open log: %w", err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketEvents, bucketActive, bucketOutbox} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("order: open log: %w", err)
	}
	return &Log{db: db, wake: make(chan struct{}, 1)}, nil
}

// Close closes the file.
func (l *Log) Close() error { return l.db.Close() }

// Append adds events to order id's history if its version is still
// expect, and queues them in the outbox — both in one transaction, so no
// event is recorded without being published, or published without being
// recorded. The events' Order and Seq are set here. It returns the order's
// new state.
func (l *Log) Append(id string, expect int, events ...Event) (Order, error) {
	var o Order
	err := l.db.Update(func(tx *bolt.Tx) error {
		hist, err := tx.Bucket(bucketEvents).CreateBucketIfNotExists([]byte(id))
		if err != nil {
			return err
		}
		if o, err = replayBucket(hist); err != nil {
			return err
		}
		if o.Version != expect {
			return fmt.Errorf("%w: order %q is at version %d, not %d", ErrConflict, id, o.Version, expect)
		}
		outbox := tx.Bucket(bucketOutbox)
		for _, e := range events {
			e.Order, e.Seq = id, o.Version+1
			if e.Type != Placed {
				e.User = o.User
			}
			if o, err = o.Apply(e); err != nil {
				return err
			}
			b, err := json.Marshal(e)
			if err != nil {
				return err
			}
			if err := hist.Put(seqKey(uint64(e.Seq)), b); err != nil {
				return err
			}
			n, err := outbox.NextSequence()
			if err != nil {
				return err
			}
			if err := outbox.Put(seqKey(n), b); err != nil {
				return err
			}
		}
		if o.Status.Final() {
			return tx.Bucket(bucketActive).Delete([]byte(id))
		}
		return tx.Bucket(bucketActive).Put([]byte(id), nil)
	})
	if err != nil {
		return Order{}, err
	}
	select {
	case l.wake <- struct{}{}:
	default:
	}
	return o, nil
}

// Load rebuilds order id from its events.
func (l *Log) Load(id string) (Order, error) {
	o, _, err := l.History(id)
	return o, err
}

// History returns order id's events and the state they replay to.
func (l *Log) History(id string) (Order, []Event, error) {
	var (
		o      Order
		events []Event
	)
	err := l.db.View(func(tx *bolt.Tx) error {
		hist := tx.Bucket(bucketEvents).Bucket([]byte(id))
		if hist == nil {
			return fmt.Errorf("%w: %q", ErrNotFound, id)
		}
		err := hist.ForEach(func(_, v []byte) error {
			var e Event
			if err := json.Unmarshal(v, &e); err != nil {
				return err
			}
			events = append(events, e)
			return nil
		})
		if err != nil {
			return err
		}
		o, err = Replay(events)
		return err
	})
	return o, events, err
}

// Active returns the ids of orders not yet final, sorted.
func (l *Log) Active() ([]string, error) {
	var ids []string
	err := l.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketActive).ForEach(func(k, _ []byte) error {
			ids = append(ids, string(k))
			return nil
		})
	})
	sort.Strings(ids)
	return ids, err
}

// outboxEntry is one queued event with its outbox key.
type outboxEntry struct {
	key   uint64
	event []byte
}

// pending returns up to n outbox entries, oldest first.
func (l *Log) pending(n int) ([]outboxEntry, error) {
	var out []outboxEntry
	err := l.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketOutbox).Cursor()
		for k, v := c.First(); k != nil && len(out) < n; k, v = c.Next() {
			out = append(out, outboxEntry{key: binary.BigEndian.Uint64(k), event: append([]byte(nil), v...)})
		}
		return nil
	})
	return out, err
}

// ack removes relayed entries from the outbox.
func (l *Log) ack(entries []outboxEntry) error {
	return l.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketOutbox)
		for _, e := range entries {
			if err := b.Delete(seqKey(e.key)); err != nil {
				return err
			}
		}
		return nil
	})
}

func replayBucket(hist *bolt.Bucket) (Order, error) {
	var o Order
	err := hist.ForEach(func(_, v []byte) error {
		var e Event
		if err := json.Unmarshal(v, &e); err != nil {
			return err
		}
		var err error
		o, err = o.Apply(e)
		return err
	})
	return o, err
}

func seqKey(n uint64) []byte {
	return binary.BigEndian.AppendUint64(nil, n)
}
