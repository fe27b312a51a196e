package lb

import (
	"context"
	"slices"
	"time"
)

// A Source reports which backends exist: a service registry, DNS SRV records, a static file.
type Source interface {
	// Watch calls update with the complete current backend set, once at the start
	// and again after every change, until ctx is done or the source fails; it
	// returns ctx's error or the failure. update is never called concurrently.
	Watch(ctx context.Context, update func([]Backend)) error
}

// drainPoll is how often Follow looks at the in-flight requests of the
// backends it drains.
const drainPoll = 100 * time.Millisecond

// Follow keeps b's backend set equal to what src reports until ctx is done:
// backends that appear enter through slow start (if configured), those that
// disappear are drained, then removed when their in-flight requests finish
// (or after [Options.DrainTimeout]). It runs in the caller's goroutine.
//
// This is how a balancer follows service discovery (the guide, Service
// Discovery): fed by a registry inside the caller, it is client-side
// discovery; a [Proxy] over it is server-side discovery. Build b over the
// backends known at the start (a first listing of the registry): the
// source's first report replaces them as any other. A backend whose
// weight changes keeps its counters and health; one whose Zone, Coord or
// Capacity changes is replaced. A backend that returns while it drains is
// put back in rotation. Each report is applied before the update call that
// made it returns. Follow runs src.Watch on a goroutine of its own and
// returns only once Watch has returned.
//
// Follow returns ctx's error when ctx is done, the source's error when it
// fails, and an error wrapping [ErrInvalidConfig] (naming the backend) when
// the source reports a backend the balancer refuses; backends it was
// draining then stay drained. Only one Follow should run on a balancer at
// a time, and the caller should not change the backend set meanwhile.
func Follow(ctx context.Context, b *Balancer, src Source) error {
	switch {
	case b == nil || b.build == nil:
		return errZeroBalancer
	case src == nil:
		return configErr(nil, "Follow needs a source, got nil")
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	updates := make(chan []Backend)
	applied := make(chan struct{})
	watched := make(chan error, 1)
	go func() {
		watched <- src.Watch(wctx, func(bs []Backend) {
			select {
			case updates <- slices.Clone(bs):
			case <-wctx.Done():
				return
			}
			select {
			case <-applied:
			case <-wctx.Done():
			}
		})
	}()
	leaving := map[string]time.Time{} // drained by Follow → when to remove at the latest
	var poll *time.Ticker
	var tick <-chan time.Time
	defer func() {
		if poll != nil {
			poll.Stop()
		}
	}()
	for {
		select {
		case bs := <-updates:
			if err := b.apply(bs, leaving); err != nil {
				cancel()
				<-watched
				return err
			}
			select {
			case applied <- struct{}{}:
			case <-wctx.Done(): // the update call already left; Watch is ending
			}
		case <-tick:
		case err := <-watched:
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return err
		}
		b.removeDrained(leaving)
		switch {
		case len(leaving) > 0 && poll == nil:
			poll = time.NewTicker(drainPoll)
			tick = poll.C
		case len(leaving) == 0 && poll != nil:
			poll.Stop()
			poll, tick = nil, nil
		}
	}
}

// removeDrained removes the backends of leaving that have no request in
// flight any more, or whose deadline passed.
func (b *Balancer) removeDrained(leaving map[string]time.Time) {
	if len(leaving) == 0 {
		return
	}
	now, wall := b.clock(), time.Now()
	var evs []Event
	b.mu.Lock()
	for addr, deadline := range leaving {
		e, ok := b.byAddr[addr]
		switch {
		case !ok || !e.draining: // removed or put back by someone else
			delete(leaving, addr)
		case e.inflight() == 0 && b.counted, !wall.Before(deadline):
			ev, _ := b.removeLocked(addr, now)
			evs = append(evs, ev)
			delete(leaving, addr)
		}
	}
	// A draining backend is in no rotation, so removing one leaves the
	// published snapshot as it is: nothing to rebuild.
	b.mu.Unlock()
	b.emit(evs)
}
