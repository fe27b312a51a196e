package lb

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// staticSource reports one backend set and waits for ctx.
type staticSource []Backend

func (s staticSource) Watch(ctx context.Context, update func([]Backend)) error {
	update(s)
	<-ctx.Done()
	return ctx.Err()
}

// pushSource reports the sets sent on it, and fails with the error sent on
// fail.
type pushSource struct {
	sets chan []Backend
	fail chan error
}

func newPushSource() *pushSource {
	return &pushSource{sets: make(chan []Backend), fail: make(chan error)}
}

func (s *pushSource) Watch(ctx context.Context, update func([]Backend)) error {
	for {
		select {
		case bs := <-s.sets:
			update(bs)
		case err := <-s.fail:
			return err
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// follow runs Follow on b and src until the test ends, and returns the
// channel its result arrives on.
func follow(t *testing.T, ctx context.Context, b *Balancer, src Source) <-chan error {
	t.Helper()
	res := make(chan error, 1)
	go func() { res <- Follow(ctx, b, src) }()
	return res
}

func addrs(bs []Backend) []string {
	out := make([]string, len(bs))
	for i, b := range bs {
		out[i] = b.Addr
	}
	return out
}

func stateOf(b *Balancer, addr string) (State, bool) {
	for _, s := range b.Stats().Backends {
		if s.Addr == addr {
			return s.State, true
		}
	}
	return 0, false
}

// Additions, removals and weight changes flow from the source to the
// balancer; new backends enter through slow start; a backend that returns
// while it drains goes back into rotation.
func TestFollow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, err := New(P2C{}, backends(2), Options{SlowStart: &SlowStartOptions{Window: time.Second}})
		require.NoError(t, err)
		src := newPushSource()
		ctx, cancel := context.WithCancel(context.Background())
		res := follow(t, ctx, b, src)

		src.sets <- []Backend{{Addr: "10.0.0.1:80", Weight: 1}, {Addr: "10.0.0.2:80", Weight: 3}, {Addr: "10.0.0.9:80", Weight: 1}}
		synctest.Wait()
		assert.Equal(t, []string{"10.0.0.1:80", "10.0.0.2:80", "10.0.0.9:80"}, addrs(b.Backends()))
		assert.Equal(t, 3.0, b.Backends()[1].Weight, "weight changed in place")
		st, _ := stateOf(b, "10.0.0.9:80")
		assert.Equal(t, StateSlowStart, st, "a new backend enters through slow start")

		src.sets <- []Backend{{Addr: "10.0.0.2:80", Weight: 3}, {Addr: "10.0.0.9:80", Weight: 1}}
		synctest.Wait()
		assert.Equal(t, []string{"10.0.0.2:80", "10.0.0.9:80"}, addrs(b.Backends()), "an idle backend that left is removed at once")

		src.sets <- []Backend{{Addr: "10.0.0.9:80", Weight: 1, Zone: "z"}}
		synctest.Wait()
		assert.Equal(t, []Backend{{Addr: "10.0.0.9:80", Weight: 1, Zone: "z"}}, b.Backends(), "a changed zone replaces the backend")

		cancel()
		assert.ErrorIs(t, <-res, context.Canceled)
	})
}

// A backend that leaves the source is drained, not cut: it takes no new
// request, those in flight finish, and it is removed once they have; or
// after Options.DrainTimeout if they do not finish.
func TestFollowDrains(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, err := New(RoundRobin{}, backends(3), Options{DrainTimeout: 10 * time.Second})
		require.NoError(t, err)
		src := newPushSource()
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		res := follow(t, ctx, b, src)

		var held []Pick
		for range 3 {
			p, err := b.Pick(ctx, Request{})
			require.NoError(t, err)
			held = append(held, p)
		}
		src.sets <- backends(1)
		synctest.Wait()
		for _, a := range []string{"10.0.0.2:80", "10.0.0.3:80"} {
			st, ok := stateOf(b, a)
			assert.True(t, ok, "%s stays while a request is in flight", a)
			assert.Equal(t, StateDraining, st, a)
		}
		for range 10 {
			p, err := b.Pick(ctx, Request{})
			require.NoError(t, err)
			assert.Equal(t, "10.0.0.1:80", p.Addr(), "a draining backend takes no new request")
			p.Done(Result{})
		}

		for i := range held {
			if held[i].Addr() == "10.0.0.2:80" {
				held[i].Done(Result{})
			}
		}
		time.Sleep(drainPoll)
		synctest.Wait()
		_, ok := stateOf(b, "10.0.0.2:80")
		assert.False(t, ok, "removed once its request finished")
		_, ok = stateOf(b, "10.0.0.3:80")
		assert.True(t, ok, "still draining")

		src.sets <- backends(3)
		synctest.Wait()
		st, _ := stateOf(b, "10.0.0.3:80")
		assert.Equal(t, StateHealthy, st, "reported again while draining: back in rotation")
		assert.Equal(t, int64(1), b.Stats().Backends[1].InFlight, "with its request and counters")

		src.sets <- backends(1)
		synctest.Wait()
		time.Sleep(10*time.Second - time.Millisecond)
		synctest.Wait()
		_, ok = stateOf(b, "10.0.0.3:80")
		assert.True(t, ok, "drained for up to the timeout")
		time.Sleep(drainPoll)
		synctest.Wait()
		_, ok = stateOf(b, "10.0.0.3:80")
		assert.False(t, ok, "removed after the timeout, request still in flight")
		for i := range held {
			held[i].Done(Result{}) // a late Done of a removed backend is harmless
		}
		cancel()
		assert.ErrorIs(t, <-res, context.Canceled)
	})
}

// Follow returns the source's failure, and refuses a backend the balancer
// would refuse, naming it.
func TestFollowErrors(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, err := New(RoundRobin{}, backends(2), Options{})
		require.NoError(t, err)
		src := newPushSource()
		res := follow(t, context.Background(), b, src)
		broken := errors.New("registry unreachable")
		src.fail <- broken
		assert.ErrorIs(t, <-res, broken)

		res = follow(t, context.Background(), b, src)
		src.sets <- []Backend{{Addr: "10.0.0.7:80", Weight: -1}}
		err = <-res
		assert.ErrorIs(t, err, ErrInvalidWeight)
		assert.ErrorContains(t, err, "10.0.0.7:80")
		assert.Len(t, b.Backends(), 2, "a refused report changes nothing")

		src.sets = nil // Watch now waits for ctx alone
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		assert.ErrorIs(t, Follow(ctx, b, src), context.DeadlineExceeded)
		assert.ErrorIs(t, Follow(ctx, b, nil), ErrInvalidConfig)
		assert.ErrorIs(t, Follow(ctx, nil, src), ErrInvalidConfig)
	})
}

// A context cancelled while Follow applies a report — here from the
// balancer's own event hook, on Follow's goroutine — ends Follow with the
// context's error; it never waits for an update call that already left.
func TestFollow_CancelledWhileApplying(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		b, err := New(RoundRobin{}, []Backend{{Addr: "a", Weight: 1}}, Options{OnEvent: func(Event) { cancel() }})
		require.NoError(t, err)
		res := follow(t, ctx, b, staticSource{{Addr: "a", Weight: 1}, {Addr: "b", Weight: 1}})
		synctest.Wait()
		select {
		case err := <-res:
			assert.ErrorIs(t, err, context.Canceled)
		default:
			t.Fatal("Follow still runs after its context was cancelled during an update")
		}
	})
}
