package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/sony/gobreaker/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sysdesign-go/sysdesign/internal/redistest"
	"github.com/sysdesign-go/sysdesign/resilience/redisbreaker"
	"github.com/sysdesign-go/sysdesign/resilience/sharedbreaker"
)

// The peer of package sharedbreaker on Redis: gobreaker's own
// DistributedCircuitBreaker, which needs a gobreaker.SharedDataStore.
// gobreakerStore is one on Redis: the state is a JSON value under one key
// and the lock a SET NX PX with a random token, released by a
// compare-and-delete script. gobreaker takes this lock around every call
// of every instance, so the fleet makes one call at a time per breaker —
// the design sharedbreaker.Breaker avoids.
type gobreakerStore struct {
	client   redis.UniversalClient
	prefix   string
	lockWait time.Duration
	token    string
}

var _ gobreaker.SharedDataStore = (*gobreakerStore)(nil)

var unlockScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`)

var errLockHeld = errors.New("bench: gobreaker lock held")

// newGobreakerStore returns a store on client whose Lock polls every
// millisecond for up to lockWait.
func newGobreakerStore(client redis.UniversalClient, prefix string, lockWait time.Duration) *gobreakerStore {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return &gobreakerStore{client: client, prefix: prefix, lockWait: lockWait, token: hex.EncodeToString(b[:])}
}

func (s *gobreakerStore) Lock(name string) error {
	deadline := time.Now().Add(s.lockWait)
	for {
		ok, err := s.client.SetNX(context.Background(), s.prefix+name, s.token, 5*time.Second).Result()
		if err != nil || ok {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%w: %q after %v", errLockHeld, name, s.lockWait)
		}
		time.Sleep(time.Millisecond)
	}
}

func (s *gobreakerStore) Unlock(name string) error {
	return unlockScript.Run(context.Background(), s.client, []string{s.prefix + name}, s.token).Err()
}

func (s *gobreakerStore) GetData(name string) ([]byte, error) {
	b, err := s.client.Get(context.Background(), s.prefix+name).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	return b, err
}

func (s *gobreakerStore) SetData(name string, data []byte) error {
	return s.client.Set(context.Background(), s.prefix+name, data, 0).Err()
}

// The peer works as configured: two gobreaker instances on the store share
// state through one lock and one JSON value, and the lock is exclusive
// across stores and released by its holder only.
func TestGobreakerStore_DistributedBreaker(t *testing.T) {
	redistest.Each(t, func(t *testing.T, db *redistest.DB) {
		errBoom := errors.New("boom")
		newDCB := func() *gobreaker.DistributedCircuitBreaker[int] {
			return must(gobreaker.NewDistributedCircuitBreaker[int](newGobreakerStore(db.NewClient(t), db.Prefix, 5*time.Second), gobreaker.Settings{
				Name: "inventory", Timeout: time.Minute,
				ReadyToTrip: func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= 3 },
			}))
		}
		a, b := newDCB(), newDCB()
		for range 3 {
			_, err := a.Execute(func() (int, error) { return 0, errBoom })
			require.ErrorIs(t, err, errBoom)
		}
		st, err := b.State()
		require.NoError(t, err)
		assert.Equal(t, gobreaker.StateOpen, st)
		_, err = b.Execute(func() (int, error) { return 1, nil })
		assert.ErrorIs(t, err, gobreaker.ErrOpenState)

		s1 := newGobreakerStore(db.Client, db.Prefix, 20*time.Millisecond)
		s2 := newGobreakerStore(db.Client, db.Prefix, 20*time.Millisecond)
		require.NoError(t, s1.Lock("m"))
		assert.ErrorIs(t, s2.Lock("m"), errLockHeld)
		require.NoError(t, s2.Unlock("m")) // not the holder: no effect
		assert.ErrorIs(t, s2.Lock("m"), errLockHeld)
		require.NoError(t, s1.Unlock("m"))
		require.NoError(t, s2.Lock("m"))
		require.NoError(t, s2.Unlock("m"))
	})
}

// runGoroutines runs b.N calls of call spread over g goroutines.
func runGoroutines(b *testing.B, g int, call func(worker int)) {
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	for w := range g {
		wg.Go(func() {
			for next.Add(1) <= int64(b.N) {
				call(w)
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "calls/s")
}

// One breaker name shared by 4 instances (4 Redis clients) on the local
// Redis, from 1, 8 and 64 goroutines: sharedbreaker.Breaker on a
// redisbreaker.Store against gobreaker's DistributedCircuitBreaker.
func BenchmarkSharedBreaker_Execute(b *testing.B) {
	db := redistest.New(b)
	ctx := context.Background()
	for _, g := range []int{1, 8, 64} {
		b.Run(fmt.Sprintf("algo=shared/goroutines=%d", g), func(b *testing.B) {
			var inst []*sharedbreaker.Breaker[int]
			for range 4 {
				store := must(redisbreaker.NewStore(db.NewClient(b), db.Prefix))
				inst = append(inst, must(sharedbreaker.New[int](sharedbreaker.Options{Store: store, Name: fmt.Sprintf("shared-%d", g)})))
			}
			b.ReportAllocs()
			runGoroutines(b, g, func(w int) { _, _ = inst[w%4].Execute(ctx, okCall) })
		})
		b.Run(fmt.Sprintf("algo=gobreaker-distributed/goroutines=%d", g), func(b *testing.B) {
			var inst []*gobreaker.DistributedCircuitBreaker[int]
			for range 4 {
				store := newGobreakerStore(db.NewClient(b), db.Prefix, time.Minute)
				inst = append(inst, must(gobreaker.NewDistributedCircuitBreaker[int](store, gobreaker.Settings{Name: fmt.Sprintf("dcb-%d", g)})))
			}
			req := func() (int, error) { return 1, nil }
			b.ReportAllocs()
			runGoroutines(b, g, func(w int) { _, _ = inst[w%4].Execute(req) })
		})
	}
}
