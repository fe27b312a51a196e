package redisshard_test

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/sysdesign-go/sysdesign/internal/redistest"
	"github.com/sysdesign-go/sysdesign/internal/tcpproxy"
	"github.com/sysdesign-go/sysdesign/shard"
	"github.com/sysdesign-go/sysdesign/shard/internal/storetest"
	"github.com/sysdesign-go/sysdesign/shard/redisshard"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// storeFor returns a constructor of one store per shard name, each under
// its own hash tag, so on the cluster the shards land on different slots.
func storeFor(t *testing.T, c redis.UniversalClient, db *redistest.DB, opts redisshard.Options) func(string) shard.Store {
	return func(name string) shard.Store {
		s, err := redisshard.NewStore(c, db.Key("{"+name+"}:"), opts)
		require.NoError(t, err)
		return s
	}
}

func TestStore_Contract(t *testing.T) {
	redistest.Each(t, func(t *testing.T, db *redistest.DB) {
		storetest.Store(t, storeFor(t, db.Client, db, redisshard.Options{}))
	})
}

// On a cluster a Store's prefix must carry a hash tag: without one, the
// data hash and the index fall on different slots and the MULTI/EXEC of
// every write would fail with CROSSSLOT. NewStore says so at once.
func TestNewStore_RefusesAPrefixThatScattersOnACluster(t *testing.T) {
	redistest.Each(t, func(t *testing.T, db *redistest.DB) {
		prefix := db.Key("orders:")
		s, err := redisshard.NewStore(db.Client, prefix, redisshard.Options{})
		if !db.Cluster {
			require.NoError(t, err, "a single node has one slot space")
			require.NoError(t, s.Put(context.Background(), "k", []byte("v")))
			return
		}
		require.ErrorIs(t, err, shard.ErrInvalidConfig)
		assert.ErrorContains(t, err, strconv.Quote(prefix))
		assert.ErrorContains(t, err, "hash tag")
		assert.Nil(t, s)

		// What the check prevents: the two keys' transaction is refused.
		ctx := context.Background()
		_, txErr := db.Client.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.HSet(ctx, prefix+"data", "k", "v")
			p.ZAdd(ctx, prefix+"index", redis.Z{Member: "k"})
			return nil
		})
		require.Error(t, txErr, "the keys %q and %q must be on different slots for this test to mean anything", prefix+"data", prefix+"index")

		for _, bad := range []string{db.Key("x{}{s1}:"), db.Key("{s1:")} {
			_, err := redisshard.NewStore(db.Client, bad, redisshard.Options{})
			assert.ErrorIs(t, err, shard.ErrInvalidConfig, bad)
		}
		s, err = redisshard.NewStore(db.Client, db.Key("{s1}:"), redisshard.Options{})
		require.NoError(t, err)
		require.NoError(t, s.Put(ctx, "k", []byte("v")))
	})
}

func TestNewX_BadInput(t *testing.T) {
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	defer c.Close()
	var nilClient *redis.Client
	_, err := redisshard.NewStore(nil, "p:", redisshard.Options{})
	assert.ErrorIs(t, err, shard.ErrInvalidConfig)
	_, err = redisshard.NewStore(nilClient, "p:", redisshard.Options{})
	assert.ErrorIs(t, err, shard.ErrInvalidConfig, "a typed nil client")
	_, err = redisshard.NewStore(c, "", redisshard.Options{})
	assert.ErrorIs(t, err, shard.ErrInvalidConfig)
	_, err = redisshard.NewDirectory(c, "p:", redisshard.Options{Timeout: -time.Second})
	assert.ErrorIs(t, err, shard.ErrInvalidConfig)
	assert.ErrorContains(t, err, "-1s")
	_, err = redisshard.NewCheckpoint(c, "", redisshard.Options{})
	assert.ErrorIs(t, err, shard.ErrInvalidConfig)
}

// A Store, Directory or Checkpoint its constructor did not make fails
// clearly instead of panicking on a nil client.
func TestZeroValuesFailClearly(t *testing.T) {
	ctx := context.Background()
	for name, call := range map[string]func() error{
		"Store.Get":             func() error { var s redisshard.Store; _, err := s.Get(ctx, "k"); return err },
		"Store.Put":             func() error { var s redisshard.Store; return s.Put(ctx, "k", nil) },
		"Store.Delete":          func() error { var s redisshard.Store; return s.Delete(ctx, "k") },
		"Store.Scan":            func() error { var s *redisshard.Store; _, err := s.Scan(ctx, "", "", 0); return err },
		"Directory.LookupShard": func() error { var d redisshard.Directory; _, err := d.LookupShard(ctx, "k"); return err },
		"Directory.Assign":      func() error { var d *redisshard.Directory; return d.Assign(ctx, "k", "s") },
		"Checkpoint.Load":       func() error { var c redisshard.Checkpoint; _, _, err := c.Load(ctx, "s"); return err },
		"Checkpoint.Save":       func() error { var c *redisshard.Checkpoint; return c.Save(ctx, "s", "k") },
	} {
		t.Run(name, func(t *testing.T) {
			var err error
			require.NotPanics(t, func() { err = call() })
			assert.ErrorIs(t, err, shard.ErrInvalidConfig)
		})
	}
}

// A Directory keeps one hash, so any prefix works on the cluster too.
func TestDirectory_ContractAndCache(t *testing.T) {
	redistest.Each(t, func(t *testing.T, db *redistest.DB) {
		ctx := context.Background()
		dir, err := redisshard.NewDirectory(db.Client, db.Prefix, redisshard.Options{})
		require.NoError(t, err)
		_, err = dir.LookupShard(ctx, "tenant:1")
		assert.ErrorIs(t, err, shard.ErrNoShardForKey)
		assert.ErrorContains(t, err, "tenant:1")
		require.NoError(t, dir.Assign(ctx, "tenant:1", "b"))
		require.NoError(t, dir.Assign(ctx, "tenant:2", "c"))
		s, err := dir.LookupShard(ctx, "tenant:2")
		require.NoError(t, err)
		assert.Equal(t, "c", s)

		abc := []shard.Node{{Name: "a", Weight: 1}, {Name: "b", Weight: 1}, {Name: "c", Weight: 1}}
		c, err := shard.NewCachedDirectory(dir, abc, shard.CachedDirectoryOptions{})
		require.NoError(t, err)
		for range 3 {
			i, err := c.Lookup(ctx, "tenant:1")
			require.NoError(t, err)
			assert.Equal(t, 1, i)
		}
		assert.Equal(t, uint64(2), c.Stats().Hits)

		// Moving the tenant is one write plus an invalidation.
		require.NoError(t, dir.Assign(ctx, "tenant:1", "c"))
		c.Invalidate("tenant:1")
		i, err := c.Lookup(ctx, "tenant:1")
		require.NoError(t, err)
		assert.Equal(t, 2, i)
	})
}

// A Checkpoint keeps one hash, so any prefix works on the cluster too.
func TestCheckpoint_Contract(t *testing.T) {
	redistest.Each(t, func(t *testing.T, db *redistest.DB) {
		cp, err := redisshard.NewCheckpoint(db.Client, db.Prefix, redisshard.Options{})
		require.NoError(t, err)
		storetest.Checkpoint(t, cp)
	})
}

// A Router over Redis stores, one hash tag per shard: on the cluster the
// shards sit on different slots (and nodes), and the cross-shard queries
// merge them.
func TestRouter_AcrossSlots(t *testing.T) {
	redistest.Each(t, func(t *testing.T, db *redistest.DB) {
		if db.Cluster {
			slots := map[int64]bool{}
			for _, n := range storetest.Nodes(4) {
				slot, err := db.Client.ClusterKeySlot(context.Background(), db.Key("{"+n.Name+"}:data")).Result()
				require.NoError(t, err)
				slots[slot] = true
			}
			require.Greater(t, len(slots), 1, "the shards must spread over slots for this test to mean anything")
		}
		storetest.Router(t, storeFor(t, db.Client, db, redisshard.Options{}))
	})
}

// The whole move, 3 → 4 shards, on Redis stores with a Redis checkpoint:
// every key readable throughout, each on its new shard only afterwards.
func TestMigration_Redis(t *testing.T) {
	redistest.Each(t, func(t *testing.T, db *redistest.DB) {
		ctx := context.Background()
		const n = 300
		from, to, stores := migrationSetup(t, storeFor(t, db.Client, db, redisshard.Options{}), 3, 4, n)
		cp, err := redisshard.NewCheckpoint(db.Client, db.Key("migration:"), redisshard.Options{})
		require.NoError(t, err)
		m, err := shard.NewMigration(from, to, stores, shard.MigrationOptions{BatchSize: 37, Checkpoint: cp})
		require.NoError(t, err)
		require.NoError(t, m.Copy(ctx))
		rep, err := m.Verify(ctx)
		require.NoError(t, err)
		assert.Zero(t, rep.Missing)
		require.NoError(t, m.Switch())
		_, err = m.Cleanup(ctx)
		require.NoError(t, err)
		r, err := m.Router(shard.RouterOptions{})
		require.NoError(t, err)
		for i := range n {
			k := fmt.Sprintf("k%05d", i)
			v, err := r.Get(ctx, k)
			require.NoError(t, err, k)
			require.Equal(t, fmt.Sprint(i), string(v))
			owner := to.Nodes()[to.Locate(k)].Name
			for name, s := range stores {
				if name != owner {
					_, err := s.Get(ctx, k)
					require.ErrorIs(t, err, shard.ErrNotFound, "%s left on %s after cleanup", k, name)
				}
			}
		}
	})
}

// migrationSetup loads n keys through a router over the first oldN shards
// and returns the old and new placements and the stores.
func migrationSetup(t *testing.T, newStore func(string) shard.Store, oldN, newN, keys int) (from, to shard.Placement, stores map[string]shard.Store) {
	t.Helper()
	nodes := storetest.Nodes(newN)
	old, err := shard.NewRing(nodes[:oldN], shard.RingOptions{})
	require.NoError(t, err)
	next, err := shard.NewRing(nodes, shard.RingOptions{})
	require.NoError(t, err)
	stores = map[string]shard.Store{}
	for _, n := range nodes {
		stores[n.Name] = newStore(n.Name)
	}
	r, err := shard.NewRouter(old, stores, shard.RouterOptions{})
	require.NoError(t, err)
	storetest.Fill(t, r.Put, keys)
	return old, next, stores
}

// A crash mid-copy against a real Redis: the connection is cut while the
// copy runs, every key stays readable, and a new Migration — as a
// restarted process would build — resumes from the checkpoint kept in
// Redis. (A proxy stands in front of one node, so this runs on the single
// node; TestMigration_Redis covers the cluster.)
func TestMigration_CrashAndResume(t *testing.T) {
	db := redistest.New(t)
	proxy, err := tcpproxy.New(db.Addr)
	require.NoError(t, err)
	defer proxy.Close()
	flaky := redis.NewClient(&redis.Options{Addr: proxy.Addr(), MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	defer flaky.Close()

	const n = 400
	opts := redisshard.Options{Timeout: 300 * time.Millisecond}
	from, to, stores := migrationSetup(t, storeFor(t, db.Client, db, opts), 3, 4, n)
	cp, err := redisshard.NewCheckpoint(db.Client, db.Key("migration:"), redisshard.Options{})
	require.NoError(t, err)

	// The first run's shard stores go through the proxy, which is cut
	// after two batches.
	viaProxy := map[string]shard.Store{}
	for name := range stores {
		viaProxy[name] = storeFor(t, flaky, db, opts)(name)
	}
	batches := 0
	m1, err := shard.NewMigration(from, to, viaProxy, shard.MigrationOptions{BatchSize: 50, Checkpoint: cp, OnBatch: func(shard.BatchEvent) {
		if batches++; batches == 2 {
			proxy.Cut()
		}
	}})
	require.NoError(t, err)
	require.Error(t, m1.Copy(context.Background()), "the copy fails when its connection is cut")
	proxy.Restore()

	m2, err := shard.NewMigration(from, to, stores, shard.MigrationOptions{BatchSize: 50, Checkpoint: cp})
	require.NoError(t, err)
	ctx := context.Background()
	for i := range n {
		k := fmt.Sprintf("k%05d", i)
		v, err := m2.Get(ctx, k)
		require.NoError(t, err, "key %s unreadable after the crash", k)
		require.Equal(t, fmt.Sprint(i), string(v))
	}
	require.NoError(t, m2.Copy(ctx))
	assert.Less(t, m2.Stats().Read, uint64(n), "the restarted copy resumed instead of starting over")
	rep, err := m2.Verify(ctx)
	require.NoError(t, err)
	assert.Zero(t, rep.Missing)
	require.NoError(t, m2.Switch())
	r, err := m2.Router(shard.RouterOptions{})
	require.NoError(t, err)
	total, err := r.Count(ctx, "", "")
	require.NoError(t, err)
	assert.Equal(t, n, total)
}

// One shard's connection is cut, and the query says which shard is
// missing. (Through a proxy in front of the single node.)
func TestRouter_ShardDown(t *testing.T) {
	db := redistest.New(t)
	proxy, err := tcpproxy.New(db.Addr)
	require.NoError(t, err)
	defer proxy.Close()
	viaProxy := redis.NewClient(&redis.Options{Addr: proxy.Addr(), MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	defer viaProxy.Close()

	nodes := storetest.Nodes(3)
	ring, err := shard.NewRing(nodes, shard.RingOptions{})
	require.NoError(t, err)
	opts := redisshard.Options{Timeout: 300 * time.Millisecond}
	stores := map[string]shard.Store{}
	for _, n := range nodes {
		c := db.Client
		if n.Name == "shard-001" {
			c = viaProxy
		}
		stores[n.Name] = storeFor(t, c, db, opts)(n.Name)
	}
	r, err := shard.NewRouter(ring, stores, shard.RouterOptions{})
	require.NoError(t, err)
	storetest.Fill(t, r.Put, 60)
	all, err := r.Scan(context.Background(), "", "", 0)
	require.NoError(t, err)
	require.Len(t, all, 60)

	proxy.Cut()
	got, err := r.Scan(context.Background(), "", "", 0)
	var pe *shard.PartialError
	require.ErrorAs(t, err, &pe)
	var failed []string
	for k := range pe.Failed {
		failed = append(failed, k)
	}
	assert.Equal(t, []string{"shard-001"}, failed)
	assert.Less(t, len(got), 60)
	assert.NotEmpty(t, got)
	proxy.Restore()
}
