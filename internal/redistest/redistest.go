// Package redistest connects tests to a real Redis server and isolates them
// from each other.
//
// Tests reach Redis at the address in REDIS_ADDR (default 127.0.0.1:6379).
// Each call to [New] gives the test its own key prefix; every key under that
// prefix is deleted when the test ends. The server is shared (CI uses it
// too), so nothing here ever flushes a database.
//
// When no Redis answers, [New] skips the test with a message saying how to
// start one — unless the CI or SYSDESIGN_REQUIRE_REDIS environment variable
// is set, in which case the test fails: in CI a Redis test never silently
// skips.
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

// Howto tells a developer how to get a Redis for the tests.
const Howto = "start one with `redis-server --port 6379 --save '' --appendonly no` " +
	"(Debian/Ubuntu: apt-get install redis-server; macOS: brew install redis), " +
	"or point REDIS_ADDR at one; `make test` starts a throw-away server when redis-server is installed"

// DB is one test's view of the shared Redis: a client and the key prefix
// the test must put its keys under.
type DB struct {
	// Client is connected to the server; it is closed when the test ends.
	Client *redis.Client
	// Prefix is unique to this test, e.g. "sysdesign-test:TestFoo:3f9a1c2b:".
	// It contains no braces, so a key built as Prefix+"{tag}..." keeps its
	// Redis Cluster hash tag.
	Prefix string
	// Addr is the server's address, for tests that need more clients (two
	// cache instances, a proxy in front of the server).
	Addr string
}

// Key returns Prefix + name.
func (d *DB) Key(name string) string { return d.Prefix + name }

// NewClient opens another client to the same server, closed when the test
// ends.
func (d *DB) NewClient(t testing.TB) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: d.Addr})
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

// New connects to Redis and returns a [DB] isolated to the test: the
// test's keys go under DB.Prefix and are deleted by t.Cleanup. It skips the
// test (or fails it, see [Required]) when Redis is unreachable.
func New(t testing.TB) *DB {
	t.Helper()
	return newDB(t, Addr(), Required())
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
// or FLUSHDB) so other users of the server are not disturbed. The prefix
// must not be empty.
func Purge(ctx context.Context, c redis.UniversalClient, prefix string) error {
	if prefix == "" {
		return fmt.Errorf("redistest: refusing to purge an empty prefix")
	}
	pattern := escapeGlob(prefix) + "*"
	var cursor uint64
	for {
		keys, next, err := c.Scan(ctx, cursor, pattern, 500).Result()
		if err != nil {
			return err
		}
		if len(keys) > 0 {
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
