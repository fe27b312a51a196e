package sim

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

// Processes sleep on virtual time, one at a time, in the engine's order.
func TestProcsSleepOnVirtualTime(t *testing.T) {
	var e Engine
	r := NewProcs(&e)
	var log []string
	for _, p := range []struct {
		name string
		d    time.Duration
	}{{"slow", 30 * time.Millisecond}, {"fast", 10 * time.Millisecond}, {"twice", 5 * time.Millisecond}} {
		r.Go(func() {
			require.NoError(t, r.Sleep(context.Background(), p.d))
			if p.name == "twice" {
				require.NoError(t, r.Sleep(context.Background(), p.d))
			}
			log = append(log, p.name+"@"+e.Now().String())
		})
	}
	start := time.Now()
	require.NoError(t, r.Run())
	assert.Equal(t, []string{"fast@10ms", "twice@10ms", "slow@30ms"}, log, "ties in scheduling order")
	assert.Less(t, time.Since(start), time.Second, "virtual, not real, time")
}

// A virtual deadline ends a call at its virtual instant, the server keeps
// working, and contexts the standard library derives from it end with it.
func TestProcsDeadlines(t *testing.T) {
	var e Engine
	r := NewProcs(&e)
	var (
		callErr     error
		gaveUpAt    time.Duration
		serverDone  time.Duration
		childErr    error
		childBefore error
		deadline    time.Time
		inner       time.Duration
	)
	r.Go(func() {
		ctx, cancel := r.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		deadline, _ = ctx.Deadline()
		child, cancelChild := context.WithCancel(ctx)
		defer cancelChild()
		childBefore = child.Err()
		callErr = r.Call(ctx, func() error {
			err := r.Sleep(context.Background(), time.Second)
			serverDone = e.Now()
			return err
		})
		gaveUpAt = e.Now()
		childErr = child.Err()
	})
	r.Go(func() {
		// A longer deadline under a shorter one ends with its parent.
		outer, cancel := r.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		ctx, cancelInner := r.WithTimeout(outer, time.Hour)
		defer cancelInner()
		_ = r.Sleep(ctx, time.Hour)
		inner = e.Now()
	})
	require.NoError(t, r.Run())
	assert.ErrorIs(t, callErr, context.DeadlineExceeded)
	assert.Equal(t, Epoch.Add(100*time.Millisecond), deadline)
	assert.Equal(t, 100*time.Millisecond, gaveUpAt)
	assert.Equal(t, time.Second, serverDone, "the server finishes the abandoned request")
	assert.NoError(t, childBefore)
	assert.ErrorIs(t, childErr, context.DeadlineExceeded, "derived contexts end synchronously")
	assert.Equal(t, 50*time.Millisecond, inner, "a child deadline ends with its parent")
}

// Processes still parked when the events run out are ended, their
// goroutines return, and waiting on a context that does not run on
// virtual time is reported, not hung on.
func TestProcsEndAndMisuse(t *testing.T) {
	defer goleak.VerifyNone(t)
	var e Engine
	r := NewProcs(&e)
	var ended, sawStopping bool
	r.Go(func() {
		ok := r.Wait(context.Background(), func(func()) {}) // nobody will wake it
		ended, sawStopping = !ok, r.Stopping()
	})
	require.NoError(t, r.Run())
	assert.True(t, ended)
	assert.True(t, sawStopping)
	assert.Empty(t, r.parked)

	var e2 Engine
	r2 := NewProcs(&e2)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var sleepErr error
	r2.Go(func() { sleepErr = r2.Sleep(ctx, time.Second) })
	err := r2.Run()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "does not end on virtual time")
	assert.ErrorIs(t, sleepErr, ErrStopped)
}
