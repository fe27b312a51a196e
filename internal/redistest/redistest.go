// Package redistest connects tests to a real Redis server, or a real Redis
// Cluster, and isolates them from each other.
//
// Tests reach a single Redis at the address in REDIS_ADDR (default
// 127.0.0.1:6379) and a Redis Cluster through the comma-separated seed
// addresses in REDIS_CLUSTER_ADDRS (default 127.0.0.1:7001,127.0.0.1:7002,
// 127.0.0.1:7003). [Each] runs a test against both. Each [DB] gives the test
// its own key prefix; every key under that prefix is deleted when the test
// ends. The servers are shared (CI uses them too), so nothing here ever
// flushes a database.
//
// When no server answers, the test skips with a message saying how to start
// one — unless the CI or SYSDESIGN_REQUIRE_REDIS environment variable is
// set, in which case the test fails: in CI a Redis test never silently
// skips, on a single node or on the cluster.
package redistest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// DefaultAddr is used when REDIS_ADDR is not set.
const DefaultAddr = "127.0.0.1:6379"

// DefaultClusterAddrs is used when REDIS_CLUSTER_ADDRS is not set.
const DefaultClusterAddrs = "127.0.0.1:7001,127.0.0.1:7002,127.0.0.1:7003"

// ClusterHowto tells a developer how to get a Redis Cluster for the tests.
const ClusterHowto = "start one with `scripts/redis-cluster start /tmp/rc 7001 7002 7003` " +
	"(needs redis-server and redis-cli), or point REDIS_CLUSTER_ADDRS at one; " +
	"`make test` starts a throw-away cluster when redis-server is installed"

// Howto tells a developer how to get a Redis for the tests.
const Howto = "start one with `redis-server --port 6379 --save '' --appendonly no` " +
	"(Debian/Ubuntu: apt-get install redis-server; macOS: brew install redis), " +
	"or point REDIS_ADDR at one; `make test` starts a throw-away server when redis-server is installed"

// DB is one test's view of the shared Redis: a client and the key prefix
// the test must put its keys under.
type DB struct {
	// Client is connected to the server (a *redis.Client) or to the cluster
	// (a *redis.ClusterClient); it is closed when the test ends.
	Client redis.UniversalClient
	// Prefix is unique to this test, e.g. "sysdesign-test:TestFoo:3f9a1c2b:".
	// It contains no braces, so a key built as Prefix+"{tag}..." keeps its
	// Redis Cluster hash tag.
	Prefix string
	// Addr is the server's address, for tests that need more clients (two
	// cache instances, a proxy in front of the server). On a cluster it is
	// the first seed address.
	Addr string
	// Cluster reports whether Client is a Redis Cluster client.
	Cluster bool
	// Addrs are the cluster's seed addresses; nil on a single node.
	Addrs []string
}

// Key returns Prefix + name.
func (d *DB) Key(name string) string { return d.Prefix + name }

// Topology names the deployment, for subtest names and messages: "single"
// or "cluster".
func (d *DB) Topology() string {
	if d.Cluster {
		return "cluster"
	}
	return "single"
}

// NewClient opens another client to the same server or cluster, closed
// when the test ends.
func (d *DB) NewClient(t testing.TB) redis.UniversalClient {
	t.Helper()
	var c redis.UniversalClient
	if d.Cluster {
		c = redis.NewClusterClient(&redis.ClusterOptions{Addrs: d.Addrs})
	} else {
		c = redis.NewClient(&redis.Options{Addr: d.Addr})
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// tb is the part of testing.TB that New needs, so the helper's own tests can
// observe skip and fail decisions.
type tb interface {
	Helper()
	Name() string
	Cleanup(func())
	Skipf(format string, args ...any)
	Fatalf(format string, args ...any)
	Logf(format string, args ...any)
}

// Addr returns the address tests use: REDIS_ADDR or [DefaultAddr].
func Addr() string {
	if a := os.Getenv("REDIS_ADDR"); a != "" {
		return a
	}
	return DefaultAddr
}

// Required reports whether a missing Redis must fail tests rather than skip
// them: true when CI or SYSDESIGN_REQUIRE_REDIS is set to anything but ""
// or "0"/"false".
func Required() bool {
	for _, k := range []string{"CI", "SYSDESIGN_REQUIRE_REDIS"} {
		switch strings.ToLower(os.Getenv(k)) {
		case "", "0", "false", "no":
		default:
			return true
		}
	}
	return false
}

// ClusterAddrs returns the cluster seed addresses tests use:
// REDIS_CLUSTER_ADDRS split at commas, or [DefaultClusterAddrs].
func ClusterAddrs() []string {
	s := os.Getenv("REDIS_CLUSTER_ADDRS")
	if s == "" {
		s = DefaultClusterAddrs
	}
	var addrs []string
	for _, a := range strings.Split(s, ",") {
		if a = strings.TrimSpace(a); a != "" {
			addrs = append(addrs, a)
		}
	}
	return addrs
}

// New connects to Redis and returns a [DB] isolated to the test: the
// test's keys go under DB.Prefix and are deleted by t.Cleanup. It skips the
// test (or fails it, see [Required]) when Redis is unreachable.
func New(t testing.TB) *DB {
	t.Helper()
	return newDB(t, Addr(), Required())
}

// NewCluster is [New] on the Redis Cluster at [ClusterAddrs]: DB.Client is a
// *redis.ClusterClient. It skips the test (or fails it, see [Required]) when
// no cluster answers with cluster_state:ok.
func NewCluster(t testing.TB) *DB {
	t.Helper()
	return newClusterDB(t, ClusterAddrs(), Required())
}

// Each runs f as two subtests, "redis=single" on a [New] DB and
// "redis=cluster" on a [NewCluster] DB, so a Redis-backed type is tested on
// both deployments its users run.
func Each(t *testing.T, f func(t *testing.T, db *DB)) {
	t.Helper()
	t.Run("redis=single", func(t *testing.T) { f(t, New(t)) })
	t.Run("redis=cluster", func(t *testing.T) { f(t, NewCluster(t)) })
}

func newDB(t tb, addr string, required bool) *DB {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: addr, DialTimeout: time.Second, MaxRetries: -1})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	err := c.Ping(ctx).Err()
	cancel()
	if err != nil {
		_ = c.Close()
		msg := fmt.Sprintf("redistest: no Redis at %s (%v): %s", addr, err, Howto)
		if required {
			t.Fatalf("%s; CI or SYSDESIGN_REQUIRE_REDIS is set, so this test may not skip", msg)
		} else {
			t.Skipf("%s", msg)
		}
		return nil
	}
	// Reconnect with normal retry behaviour for the test's own use.
	_ = c.Close()
	c = redis.NewClient(&redis.Options{Addr: addr})
	db := &DB{Client: c, Prefix: prefixFor(t.Name()), Addr: addr}
	t.Cleanup(func() {
		if err := Purge(context.Background(), c, db.Prefix); err != nil {
			t.Logf("redistest: cleaning up keys under %q: %v", db.Prefix, err)
		}
		_ = c.Close()
	})
	return db
}

func newClusterDB(t tb, addrs []string, required bool) *DB {
	t.Helper()
	c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs, DialTimeout: time.Second, MaxRetries: -1})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	info, err := c.ClusterInfo(ctx).Result()
	if err == nil && !strings.Contains(info, "cluster_state:ok") {
		err = fmt.Errorf("cluster_state is not ok")
	}
	if err == nil {
		err = c.ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error { return m.Ping(ctx).Err() })
	}
	cancel()
	_ = c.Close()
	if err != nil {
		msg := fmt.Sprintf("redistest: no Redis Cluster at %s (%v): %s", strings.Join(addrs, ","), err, ClusterHowto)
		if required {
			t.Fatalf("%s; CI or SYSDESIGN_REQUIRE_REDIS is set, so this test may not skip", msg)
		} else {
			t.Skipf("%s", msg)
		}
		return nil
	}
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs})
	// Load the slot map and open a connection to every node now, so a
	// test's first command, often under a short per-call timeout of the
	// code under test, does not pay for the discovery on a busy machine.
	ctx, cancel = context.WithTimeout(context.Background(), 10*time.Second)
	err = cc.ForEachShard(ctx, func(ctx context.Context, s *redis.Client) error { return s.Ping(ctx).Err() })
	cancel()
	if err != nil {
		_ = cc.Close()
		t.Fatalf("redistest: Redis Cluster at %s answered CLUSTER INFO but not a PING on every node: %v", strings.Join(addrs, ","), err)
	}
	db := &DB{Client: cc, Prefix: prefixFor(t.Name()), Addr: addrs[0], Cluster: true, Addrs: addrs}
	t.Cleanup(func() {
		if err := Purge(context.Background(), cc, db.Prefix); err != nil {
			t.Logf("redistest: cleaning up keys under %q: %v", db.Prefix, err)
		}
		_ = cc.Close()
	})
	return db
}

var unsafeChars = regexp.MustCompile(`[^A-Za-z0-9_.-]+`)

func prefixFor(name string) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	n := unsafeChars.ReplaceAllString(name, "_")
	if len(n) > 60 {
		n = n[:60]
	}
	return "sysdesign-test:" + n + ":" + hex.EncodeToString(b[:]) + ":"
}

// Purge deletes every key that starts with prefix, using SCAN (never KEYS
// or FLUSHDB) so other users of the server are not disturbed; on a Redis
// Cluster it scans every master. The prefix must not be empty.
func Purge(ctx context.Context, c redis.UniversalClient, prefix string) error {
	if prefix == "" {
		return fmt.Errorf("redistest: refusing to purge an empty prefix")
	}
	pattern := escapeGlob(prefix) + "*"
	if cc, ok := c.(*redis.ClusterClient); ok {
		return cc.ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error {
			return purge(ctx, m, pattern, true)
		})
	}
	return purge(ctx, c, pattern, false)
}

// purge unlinks the keys that match pattern on one server. On a cluster
// node the keys of one SCAN page may lie in different slots, so each is
// unlinked by itself (in one pipeline) rather than in one CROSSSLOT call.
func purge(ctx context.Context, c redis.Cmdable, pattern string, perKey bool) error {
	var cursor uint64
	for {
		keys, next, err := c.Scan(ctx, cursor, pattern, 500).Result()
		if err != nil {
			return err
		}
		switch {
		case len(keys) == 0:
		case perKey:
			if _, err := c.Pipelined(ctx, func(p redis.Pipeliner) error {
				for _, k := range keys {
					p.Unlink(ctx, k)
				}
				return nil
			}); err != nil {
				return err
			}
		default:
			if err := c.Unlink(ctx, keys...).Err(); err != nil {
				return err
			}
		}
		if next == 0 {
			return nil
		}
		cursor = next
	}
}

func escapeGlob(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `*`, `\*`, `?`, `\?`, `[`, `\[`, `]`, `\]`)
	return r.Replace(s)
}
