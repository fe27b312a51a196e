package service

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"go.etcd.io/bbolt"

	"github.com/sysdesign-go/sysdesign/shard"
)

// Storage is the durable source of truth: one bbolt file per shard in a
// data directory, placed by jump consistent hashing behind a
// [shard.Router]. A record and its click counter share a shard (the shard
// key is the short code), so a code's data never spans files.
//
// The number of shards is fixed when the directory is created (it is
// written to a SHARDS file); opening it with another count is an error,
// because jump hashing would then look for keys on the wrong shards.
//
// Storage is safe for concurrent use; several [Service] instances in one
// process share one Storage, as several processes would share a database.
type Storage struct {
	router *shard.Router
	stores map[string]*boltStore
	id     string
}

// ErrStorage wraps bad storage configuration.
var ErrStorage = errors.New("service: storage")

// StorageOptions configures [OpenStorage]. The zero value is four shards
// read at the speed of the local disk.
type StorageOptions struct {
	// Shards is the number of bbolt files, 1 to 1024. Default 4.
	Shards int
	// ReadLatency is added to every read (a redirect's lookup, a stats
	// count), standing in for the round trip to a networked database: a
	// bbolt read is a lookup in memory-mapped pages, far cheaper than a
	// query over the network, so without it a load test says little about
	// what a cache saves in front of a real database. Writes are not
	// delayed. Default 0.
	ReadLatency time.Duration
}

// OpenStorage opens (creating if needed) dir with opts.Shards bbolt files.
func OpenStorage(dir string, opts StorageOptions) (*Storage, error) {
	shards := opts.Shards
	if shards == 0 {
		shards = 4
	}
	if dir == "" {
		return nil, fmt.Errorf("%w: empty data directory", ErrStorage)
	}
	if shards < 1 || shards > 1024 {
		return nil, fmt.Errorf("%w: shard count %d out of [1, 1024]", ErrStorage, shards)
	}
	if opts.ReadLatency < 0 {
		return nil, fmt.Errorf("%w: negative read latency %v", ErrStorage, opts.ReadLatency)
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrStorage, err)
	}
	meta := filepath.Join(dir, "SHARDS")
	switch b, err := os.ReadFile(meta); {
	case err == nil:
		if n, _ := strconv.Atoi(strings.TrimSpace(string(b))); n != shards {
			return nil, fmt.Errorf("%w: %s holds %q shards, not %d (resharding needs a migration)", ErrStorage, dir, strings.TrimSpace(string(b)), shards)
		}
	case errors.Is(err, os.ErrNotExist):
		if err := os.WriteFile(meta, []byte(strconv.Itoa(shards)+"\n"), 0o640); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrStorage, err)
		}
	default:
		return nil, fmt.Errorf("%w: %w", ErrStorage, err)
	}
	id, err := storageID(dir)
	if err != nil {
		return nil, err
	}
	s := &Storage{stores: map[string]*boltStore{}, id: id}
	nodes := make([]shard.Node, shards)
	generic := map[string]shard.Store{}
	for i := range nodes {
		name := shardName(i)
		nodes[i] = shard.Node{Name: name, Weight: 1}
		st, err := openBolt(filepath.Join(dir, name+".db"), opts.ReadLatency)
		if err != nil {
			_ = s.Close()
			return nil, err
		}
		s.stores[name], generic[name] = st, st
	}
	jump, err := shard.NewJump(nodes)
	if err != nil {
		_ = s.Close()
		return nil, err
	}
	s.router, err = shard.NewRouter(jump, generic, shard.RouterOptions{ShardKey: shardKey, QueryTimeout: 5 * time.Second})
	if err != nil {
		_ = s.Close()
		return nil, err
	}
	return s, nil
}

// storageID returns the ID in dir's ID file, writing a new random one
// first if there is none.
func storageID(dir string) (string, error) {
	path := filepath.Join(dir, "ID")
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		var r [8]byte
		_, _ = rand.Read(r[:])
		id := hex.EncodeToString(r[:])
		// Written aside, then linked into place: the ID file appears whole
		// or not at all, and of two openers of a new directory both end up
		// with the ID the first one linked.
		tmp, cerr := os.CreateTemp(dir, "ID.tmp*")
		if cerr != nil {
			return "", fmt.Errorf("%w: %w", ErrStorage, cerr)
		}
		defer os.Remove(tmp.Name())
		_, werr := tmp.WriteString(id + "\n")
		if werr = errors.Join(werr, tmp.Sync(), tmp.Close()); werr != nil {
			return "", fmt.Errorf("%w: %w", ErrStorage, werr)
		}
		lerr := os.Link(tmp.Name(), path)
		if lerr == nil {
			return id, nil
		}
		if !errors.Is(lerr, os.ErrExist) {
			return "", fmt.Errorf("%w: %w", ErrStorage, lerr)
		}
		b, err = os.ReadFile(path)
	}
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrStorage, err)
	}
	id := strings.TrimSpace(string(b))
	if !validNamespace(id) {
		return "", fmt.Errorf("%w: %s holds %q, not an ID of 1 to 64 characters from A-Z, a-z, 0-9, '.', '_' and '-'", ErrStorage, path, truncate(id))
	}
	return id, nil
}

// ID identifies this data directory: a random string written in its ID
// file when the directory is created, so a directory deleted and created
// again gets a new one. The service keeps its Redis keys under it (see
// [Config.Namespace]).
func (s *Storage) ID() string { return s.id }

// shardKey places "u:<code>" and "c:<code>" by the code, so a record and
// its counter live together; other keys are placed whole.
func shardKey(key string) string {
	if len(key) > 2 && key[1] == ':' && (key[0] == 'u' || key[0] == 'c') {
		return key[2:]
	}
	return key
}

// Router returns the shard router.
func (s *Storage) Router() *shard.Router { return s.router }

// owner returns the bbolt store holding key. The shard.Store interface has
// no conditional write or counter increment, so those go to the owning
// store directly.
func (s *Storage) owner(key string) (*boltStore, error) {
	name, err := s.router.ShardFor(key)
	if err != nil {
		return nil, err
	}
	return s.stores[name], nil
}

// Create stores value under key unless key exists; it then returns the
// existing value and false.
func (s *Storage) Create(ctx context.Context, key string, value []byte) (existing []byte, created bool, err error) {
	st, err := s.owner(key)
	if err != nil {
		return nil, false, err
	}
	return st.create(ctx, key, value)
}

// Reserve adds n to the counter at key and returns its previous value: a
// block [old, old+n) of IDs owned by the caller alone.
func (s *Storage) Reserve(ctx context.Context, key string, n uint64) (uint64, error) {
	st, err := s.owner(key)
	if err != nil {
		return 0, err
	}
	return st.add(ctx, map[string]uint64{key: n})
}

// AddCounts adds deltas to the counters they name, one transaction per
// shard; done is called with the keys of each committed shard, so a
// caller retrying after a partial failure never adds a delta twice.
func (s *Storage) AddCounts(ctx context.Context, deltas map[string]uint64, done func(keys []string)) error {
	byShard := map[*boltStore]map[string]uint64{}
	for k, d := range deltas {
		st, err := s.owner(k)
		if err != nil {
			return err
		}
		if byShard[st] == nil {
			byShard[st] = map[string]uint64{}
		}
		byShard[st][k] = d
	}
	var errs []error
	for st, m := range byShard {
		if _, err := st.add(ctx, m); err != nil {
			errs = append(errs, err)
			continue
		}
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		done(keys)
	}
	return errors.Join(errs...)
}

// Count returns the counter at key (0 when absent).
func (s *Storage) Count(ctx context.Context, key string) (uint64, error) {
	v, err := s.router.Get(ctx, key)
	if errors.Is(err, shard.ErrNotFound) {
		return 0, nil
	}
	if err != nil || len(v) != 8 {
		return 0, errors.Join(err, errCorrupt(key, v))
	}
	return binary.BigEndian.Uint64(v), nil
}

func errCorrupt(key string, v []byte) error {
	if len(v) == 8 {
		return nil
	}
	return fmt.Errorf("%w: counter %q holds %d bytes", ErrStorage, key, len(v))
}

// Close closes every shard file.
func (s *Storage) Close() error {
	var errs []error
	for _, st := range s.stores {
		errs = append(errs, st.db.Close())
	}
	return errors.Join(errs...)
}

// boltStore is a [shard.Store] on one bbolt file. bbolt does not take a
// context: operations check it before they start.
type boltStore struct {
	db        *bbolt.DB
	readDelay time.Duration // added to Get and Scan; see StorageOptions.ReadLatency
}

var _ shard.Store = (*boltStore)(nil)

var bucket = []byte("kv")

func openBolt(path string, readDelay time.Duration) (*boltStore, error) {
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: time.Second})
	if err != nil {
		return nil, fmt.Errorf("%w: opening %s: %w", ErrStorage, path, err)
	}
	if err := db.Update(func(tx *bbolt.Tx) error { _, err := tx.CreateBucketIfNotExists(bucket); return err }); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("%w: %s: %w", ErrStorage, path, err)
	}
	return &boltStore{db: db, readDelay: readDelay}, nil
}

// wait sleeps for the read delay, or until ctx ends.
func (b *boltStore) wait(ctx context.Context) error {
	if b.readDelay > 0 {
		t := time.NewTimer(b.readDelay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
		}
	}
	return ctx.Err()
}

func (b *boltStore) Get(ctx context.Context, key string) ([]byte, error) {
	if err := b.wait(ctx); err != nil {
		return nil, err
	}
	var out []byte
	err := b.db.View(func(tx *bbolt.Tx) error {
		v := tx.Bucket(bucket).Get([]byte(key))
		if v == nil {
			return shard.ErrNotFound
		}
		out = append([]byte(nil), v...)
		return nil
	})
	return out, err
}

func (b *boltStore) Put(ctx context.Context, key string, value []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return b.db.Update(func(tx *bbolt.Tx) error { return tx.Bucket(bucket).Put([]byte(key), value) })
}

func (b *boltStore) Delete(ctx context.Context, key string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return b.db.Update(func(tx *bbolt.Tx) error { return tx.Bucket(bucket).Delete([]byte(key)) })
}

func (b *boltStore) Scan(ctx context.Context, start, end string, limit int) ([]shard.KV, error) {
	if err := b.wait(ctx); err != nil {
		return nil, err
	}
	var out []shard.KV
	err := b.db.View(func(tx *bbolt.Tx) error {
		c := tx.Bucket(bucket).Cursor()
		for k, v := c.Seek([]byte(start)); k != nil && (limit <= 0 || len(out) < limit); k, v = c.Next() {
			if end != "" && string(k) >= end {
				break
			}
			out = append(out, shard.KV{Key: string(k), Value: append([]byte(nil), v...)})
		}
		return nil
	})
	return out, err
}

func (b *boltStore) create(ctx context.Context, key string, value []byte) ([]byte, bool, error) {
	if err := ctx.Err(); err != nil {
		return nil, false, err
	}
	var existing []byte
	err := b.db.Update(func(tx *bbolt.Tx) error {
		bk := tx.Bucket(bucket)
		if v := bk.Get([]byte(key)); v != nil {
			existing = append([]byte(nil), v...)
			return nil
		}
		return bk.Put([]byte(key), value)
	})
	return existing, err == nil && existing == nil, err
}

// add adds each delta to its big-endian uint64 counter in one
// transaction; with one key it returns that counter's previous value.
func (b *boltStore) add(ctx context.Context, deltas map[string]uint64) (uint64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	var prev uint64
	err := b.db.Update(func(tx *bbolt.Tx) error {
		bk := tx.Bucket(bucket)
		for k, d := range deltas {
			var cur uint64
			if v := bk.Get([]byte(k)); v != nil {
				if len(v) != 8 {
					return errCorrupt(k, v)
				}
				cur = binary.BigEndian.Uint64(v)
			}
			prev = cur
			var buf [8]byte
			binary.BigEndian.PutUint64(buf[:], cur+d)
			if err := bk.Put([]byte(k), buf[:]); err != nil {
				return err
			}
		}
		return nil
	})
	return prev, err
}
