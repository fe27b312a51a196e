package shard

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
)

// DefaultBatchSize is the number of keys a [Migration] copies per batch
// when [MigrationOptions.BatchSize] is zero.
const DefaultBatchSize = 500

// Checkpoint records how far a [Migration] has copied each source shard, so
// a migration that crashed or was cancelled resumes where it stopped.
// [MemCheckpoint] and [github.com/sysdesign-go/sysdesign/shard/redisshard.Checkpoint]
// implement it.
type Checkpoint interface {
	// Load returns the last key copied from shard, and false when the
	// shard has not been started.
	Load(ctx context.Context, shard string) (key string, ok bool, err error)
	// Save records that every key of shard up to and including key has
	// been copied.
	Save(ctx context.Context, shard, key string) error
}

// MemCheckpoint is an in-memory [Checkpoint]; it survives a cancelled
// migration but not the process. The zero value is ready to use and safe
// for concurrent use.
type MemCheckpoint struct {
	m sync.Map // shard → last key
}

// Load implements [Checkpoint].
func (c *MemCheckpoint) Load(_ context.Context, shard string) (string, bool, error) {
	v, ok := c.m.Load(shard)
	if !ok {
		return "", false, nil
	}
	return v.(string), true, nil
}

// Save implements [Checkpoint].
func (c *MemCheckpoint) Save(_ context.Context, shard, key string) error {
	c.m.Store(shard, key)
	return nil
}

// MigrationOptions configure [NewMigration]. The zero value is ready to
// use.
type MigrationOptions struct {
	// BatchSize is the number of keys read from a source shard per batch.
	// Zero means [DefaultBatchSize]; negative is an error.
	BatchSize int
	// Checkpoint stores progress. Nil means a fresh [MemCheckpoint]: a
	// re-run in the same process resumes, a new process copies again from
	// the start (which is safe, only slower).
	Checkpoint Checkpoint
	// OnBatch, if set, is called after each copied batch, on the goroutine
	// running [Migration.Copy], never under a lock.
	OnBatch func(BatchEvent)
	// ShardKey maps a key to the part of it that is placed, as
	// [RouterOptions.ShardKey]; it must be the one the routers use. Nil
	// means the whole key.
	ShardKey func(key string) string
}

// BatchEvent describes one copied batch.
type BatchEvent struct {
	// Shard is the source shard; LastKey the batch's last key (the
	// checkpoint).
	Shard, LastKey string
	// Read is the number of keys read, Copied how many were written to
	// their new shard.
	Read, Copied int
}

// MigrationPhase is where a [Migration] stands.
type MigrationPhase int32

// The phases of a migration, in order.
const (
	// PhaseCopying: reads try the new shard then the old one; writes go to
	// the new shard.
	PhaseCopying MigrationPhase = iota
	// PhaseVerified: every moving key was found on its new shard.
	PhaseVerified
	// PhaseSwitched: reads and writes use only the new layout.
	PhaseSwitched
)

// String names the phase.
func (p MigrationPhase) String() string {
	switch p {
	case PhaseCopying:
		return "copying"
	case PhaseVerified:
		return "verified"
	case PhaseSwitched:
		return "switched"
	}
	return fmt.Sprintf("MigrationPhase(%d)", int32(p))
}

// lockStripes is the number of key locks a migration uses.
const lockStripes = 256

// Migration moves data from one placement to another while reads and
// writes continue, as Vitess resharding does (copy → catch up → verify →
// switch traffic):
//
//   - while it runs, the application reads and writes through the
//     migration: [Migration.Get] reads the key's new shard, then its old one
//     (double-read); [Migration.Put] writes the new shard;
//     [Migration.Delete] removes the key from both;
//   - [Migration.Copy] walks each source shard in key order, in batches,
//     and copies every key whose shard changes, unless the new shard
//     already has a (newer) value; it saves a [Checkpoint] after each batch;
//   - [Migration.Verify] checks that every moving key is on its new shard;
//   - [Migration.Switch] ends double-reads ([Migration.Router] then serves
//     the new layout) and [Migration.Cleanup] deletes the old copies.
//
// Every key stays readable at every step: a key is deleted from its old
// shard only by Delete (which removes it everywhere) or by Cleanup after
// the switch. A crash or cancellation mid-copy leaves keys either not yet
// copied (read from the old shard) or copied (read from the new one); a
// new Migration with the same Checkpoint resumes, and re-copying is safe
// because a copy never overwrites a value already on the new shard.
//
// Writes, deletes and copies of one key are serialised by a per-key lock,
// which is what keeps a concurrent write from being lost; so during a
// migration every writer must go through this Migration (one router
// process, or requests forwarded to it). Store calls run under that lock.
//
// A Migration is safe for concurrent use.
type Migration struct {
	from, to         Placement
	fromNodes        []Node
	toNodes          []Node
	fromSt, toSt     []Store
	opts             MigrationOptions
	phase            atomic.Int32
	locks            [lockStripes]sync.Mutex
	copied, read     atomic.Uint64
	batches, doubles atomic.Uint64
	stores           map[string]Store
}

// NewMigration prepares a migration from one placement to another over
// stores, which must name every shard of both.
func NewMigration(from, to Placement, stores map[string]Store, opts MigrationOptions) (*Migration, error) {
	if from == nil || to == nil {
		return nil, fmt.Errorf("%w: nil placement", ErrInvalidConfig)
	}
	if opts.BatchSize < 0 {
		return nil, fmt.Errorf("%w: MigrationOptions.BatchSize is %d (want ≥ 0; 0 means %d)", ErrInvalidConfig, opts.BatchSize, DefaultBatchSize)
	}
	if opts.BatchSize == 0 {
		opts.BatchSize = DefaultBatchSize
	}
	if opts.Checkpoint == nil {
		opts.Checkpoint = &MemCheckpoint{}
	}
	m := &Migration{from: from, to: to, fromNodes: from.Nodes(), toNodes: to.Nodes(), opts: opts, stores: stores}
	for _, side := range []struct {
		nodes []Node
		out   *[]Store
	}{{m.fromNodes, &m.fromSt}, {m.toNodes, &m.toSt}} {
		for _, n := range side.nodes {
			s := stores[n.Name]
			if s == nil {
				return nil, fmt.Errorf("%w: no store for shard %q", ErrUnknownShard, n.Name)
			}
			*side.out = append(*side.out, s)
		}
	}
	return m, nil
}

func (m *Migration) shardKey(key string) string {
	if m.opts.ShardKey != nil {
		return m.opts.ShardKey(key)
	}
	return key
}

func (m *Migration) locateTo(key string) int   { return m.to.Locate(m.shardKey(key)) }
func (m *Migration) locateFrom(key string) int { return m.from.Locate(m.shardKey(key)) }

// Phase returns the current phase.
func (m *Migration) Phase() MigrationPhase { return MigrationPhase(m.phase.Load()) }

func (m *Migration) lock(key string) *sync.Mutex {
	l := &m.locks[hashKey(key)%lockStripes]
	l.Lock()
	return l
}

// owners returns key's old and new stores; old is nil when the key does
// not move (or had no old shard).
func (m *Migration) owners(key string) (oldS, newS Store, err error) {
	if m == nil || m.from == nil {
		return nil, nil, errNotMade("Migration", "NewMigration")
	}
	j := m.locateTo(key)
	if j < 0 {
		return nil, nil, fmt.Errorf("%w: key %q has no shard in the new layout", ErrNoShardForKey, key)
	}
	newS = m.toSt[j]
	if i := m.locateFrom(key); i >= 0 && m.fromNodes[i].Name != m.toNodes[j].Name {
		oldS = m.fromSt[i]
	}
	return oldS, newS, nil
}

// Get reads key from its new shard and, until the switch, from its old
// shard when the new one does not have it.
func (m *Migration) Get(ctx context.Context, key string) ([]byte, error) {
	oldS, newS, err := m.owners(key)
	if err != nil {
		return nil, err
	}
	v, err := newS.Get(ctx, key)
	if oldS == nil || !errors.Is(err, ErrNotFound) || m.Phase() == PhaseSwitched {
		return v, err
	}
	m.doubles.Add(1)
	return oldS.Get(ctx, key)
}

// Put writes key to its new shard.
func (m *Migration) Put(ctx context.Context, key string, value []byte) error {
	_, newS, err := m.owners(key)
	if err != nil {
		return err
	}
	defer m.lock(key).Unlock()
	return newS.Put(ctx, key, value)
}

// Delete removes key from its old shard, then from its new one, so a
// double-read cannot bring it back. (Old first: a crash between the two
// leaves the newest value readable rather than an older one.)
func (m *Migration) Delete(ctx context.Context, key string) error {
	oldS, newS, err := m.owners(key)
	if err != nil {
		return err
	}
	defer m.lock(key).Unlock()
	if oldS != nil && m.Phase() != PhaseSwitched {
		if err := oldS.Delete(ctx, key); err != nil {
			return err
		}
	}
	return newS.Delete(ctx, key)
}

// Copy copies every moving key to its new shard, source shard by source
// shard in key order, resuming after the checkpoint. It returns ctx's error
// when cancelled; calling it again (or on a new Migration with the same
// Checkpoint) continues.
func (m *Migration) Copy(ctx context.Context) error {
	if m == nil || m.from == nil {
		return errNotMade("Migration", "NewMigration")
	}
	if m.Phase() == PhaseSwitched {
		return fmt.Errorf("%w: Copy after Switch", ErrMigrationState)
	}
	for i, src := range m.fromSt {
		name := m.fromNodes[i].Name
		start := ""
		last, ok, err := m.opts.Checkpoint.Load(ctx, name)
		if err != nil {
			return fmt.Errorf("shard: loading checkpoint of %q: %w", name, err)
		}
		if ok {
			start = last + "\x00"
		}
		for {
			page, err := src.Scan(ctx, start, "", m.opts.BatchSize)
			if err != nil {
				return fmt.Errorf("shard: scanning %q: %w", name, err)
			}
			if err := checkScanProgress(page, start); err != nil {
				return fmt.Errorf("shard: scanning %q: %w", name, err)
			}
			if len(page) == 0 {
				break
			}
			copied := 0
			for _, kv := range page {
				c, err := m.copyKey(ctx, name, i, kv.Key)
				if err != nil {
					return err
				}
				copied += c
			}
			last := page[len(page)-1].Key
			if err := m.opts.Checkpoint.Save(ctx, name, last); err != nil {
				return fmt.Errorf("shard: saving checkpoint of %q: %w", name, err)
			}
			m.read.Add(uint64(len(page)))
			m.copied.Add(uint64(copied))
			m.batches.Add(1)
			if m.opts.OnBatch != nil {
				m.opts.OnBatch(BatchEvent{Shard: name, LastKey: last, Read: len(page), Copied: copied})
			}
			if len(page) < m.opts.BatchSize {
				break
			}
			start = last + "\x00"
		}
	}
	return nil
}

// copyKey copies one key of source shard i if it moves and its new shard
// has no value yet; it reports 1 when it wrote.
func (m *Migration) copyKey(ctx context.Context, name string, i int, key string) (int, error) {
	if m.locateFrom(key) != i {
		// A stale copy left by an earlier migration that was not cleaned
		// up: the key's data lives on its owner, which copies it.
		return 0, nil
	}
	j := m.locateTo(key)
	if j < 0 {
		return 0, fmt.Errorf("%w: key %q on shard %q has no shard in the new layout", ErrNoShardForKey, key, name)
	}
	if m.toNodes[j].Name == name {
		return 0, nil
	}
	defer m.lock(key).Unlock()
	// Re-read under the lock: the scanned value may since have been
	// overwritten (on the new shard) or deleted (everywhere).
	v, err := m.fromSt[i].Get(ctx, key)
	if errors.Is(err, ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("shard: copying %q from %q: %w", key, name, err)
	}
	switch _, err := m.toSt[j].Get(ctx, key); {
	case err == nil:
		return 0, nil // a newer write is already there
	case !errors.Is(err, ErrNotFound):
		return 0, fmt.Errorf("shard: copying %q to %q: %w", key, m.toNodes[j].Name, err)
	}
	if err := m.toSt[j].Put(ctx, key, v); err != nil {
		return 0, fmt.Errorf("shard: copying %q to %q: %w", key, m.toNodes[j].Name, err)
	}
	return 1, nil
}

// VerifyReport is the result of [Migration.Verify].
type VerifyReport struct {
	// Checked is the number of moving keys checked; Missing those not on
	// their new shard, the first 100 of which are listed.
	Checked, Missing int
	MissingKeys      []string
}

// Verify checks that every moving key still on a source shard is on its
// new shard. A clean report moves the migration to [PhaseVerified].
func (m *Migration) Verify(ctx context.Context) (VerifyReport, error) {
	if m == nil || m.from == nil {
		return VerifyReport{}, errNotMade("Migration", "NewMigration")
	}
	var rep VerifyReport
	for i, src := range m.fromSt {
		name := m.fromNodes[i].Name
		err := walk(ctx, src, "", "", 0, func(page []KV) bool {
			for _, kv := range page {
				j := m.locateTo(kv.Key)
				if j < 0 || m.toNodes[j].Name == name || m.locateFrom(kv.Key) != i {
					continue
				}
				rep.Checked++
				if _, err := m.toSt[j].Get(ctx, kv.Key); err != nil {
					rep.Missing++
					if len(rep.MissingKeys) < 100 {
						rep.MissingKeys = append(rep.MissingKeys, kv.Key)
					}
				}
			}
			return true
		})
		if err != nil {
			return rep, fmt.Errorf("shard: verifying %q: %w", name, err)
		}
	}
	if rep.Missing == 0 {
		m.phase.CompareAndSwap(int32(PhaseCopying), int32(PhaseVerified))
	}
	return rep, nil
}

// Switch ends the double-reads: from now on reads use only the new
// layout. It requires a clean [Migration.Verify].
func (m *Migration) Switch() error {
	if m == nil || m.from == nil {
		return errNotMade("Migration", "NewMigration")
	}
	if !m.phase.CompareAndSwap(int32(PhaseVerified), int32(PhaseSwitched)) && m.Phase() != PhaseSwitched {
		return fmt.Errorf("%w: Switch in phase %v (want %v)", ErrMigrationState, m.Phase(), PhaseVerified)
	}
	return nil
}

// Router returns a [Router] over the new layout, for use after the
// switch. A nil opts.ShardKey takes the migration's.
func (m *Migration) Router(opts RouterOptions) (*Router, error) {
	if m == nil || m.from == nil {
		return nil, errNotMade("Migration", "NewMigration")
	}
	if m.Phase() != PhaseSwitched {
		return nil, fmt.Errorf("%w: Router in phase %v (want %v)", ErrMigrationState, m.Phase(), PhaseSwitched)
	}
	if opts.ShardKey == nil {
		opts.ShardKey = m.opts.ShardKey
	}
	return NewRouter(m.to, m.stores, opts)
}

// Cleanup deletes, after the switch, every key a source shard holds but
// does not own in the new layout — the old copies of the keys that moved,
// and any stale copy an earlier migration left — and returns how many it
// deleted.
func (m *Migration) Cleanup(ctx context.Context) (int, error) {
	if m == nil || m.from == nil {
		return 0, errNotMade("Migration", "NewMigration")
	}
	if m.Phase() != PhaseSwitched {
		return 0, fmt.Errorf("%w: Cleanup in phase %v (want %v)", ErrMigrationState, m.Phase(), PhaseSwitched)
	}
	deleted := 0
	for i, src := range m.fromSt {
		name := m.fromNodes[i].Name
		var stale []string
		err := walk(ctx, src, "", "", 0, func(page []KV) bool {
			for _, kv := range page {
				if j := m.locateTo(kv.Key); j >= 0 && m.toNodes[j].Name != name {
					stale = append(stale, kv.Key)
				}
			}
			return true
		})
		if err != nil {
			return deleted, fmt.Errorf("shard: cleaning %q: %w", name, err)
		}
		for _, k := range stale {
			if err := src.Delete(ctx, k); err != nil {
				return deleted, fmt.Errorf("shard: cleaning %q: %w", name, err)
			}
			deleted++
		}
	}
	return deleted, nil
}

// MigrationStats is a snapshot of a [Migration]'s progress.
type MigrationStats struct {
	Phase MigrationPhase
	// Read is the number of keys scanned by Copy, Copied how many were
	// written to a new shard, Batches the batches done.
	Read, Copied, Batches uint64
	// DoubleReads counts Gets that fell back to the old shard.
	DoubleReads uint64
}

// Stats returns the migration's progress.
func (m *Migration) Stats() MigrationStats {
	return MigrationStats{Phase: m.Phase(), Read: m.read.Load(), Copied: m.copied.Load(), Batches: m.batches.Load(), DoubleReads: m.doubles.Load()}
}
