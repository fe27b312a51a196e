package order

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Choreography runs the same saga as [Orchestrator] with no coordinator:
// the three participants (stock, payments, shipping) each read the event
// stream in their own consumer group and, when an order's latest event
// makes the next step theirs, run it and record its event — which the
// relay publishes, which wakes the next participant. Every event reaches
// every participant, so an order costs more messages and a stream hop per
// step; in exchange no single process knows, or blocks, the whole
// workflow.
//
// A participant whose step fails for a reason that is not final leaves the
// event unacknowledged and gets it again, so it retries until the step
// succeeds or GiveUp passes; meanwhile later events wait behind it (one
// consumer per group keeps the stream in order).
type Choreography struct {
	log    *Log
	svc    Services
	client redis.UniversalClient
	stream string
	// GiveUp is as for [Orchestrator].
	GiveUp time.Duration
	// Now is the clock for events and GiveUp; nil means time.Now.
	Now func() time.Time
}

// NewChoreography returns participants for the orders in log, reacting to
// the events that a [Relay] publishes from log to stream.
func NewChoreography(log *Log, svc Services, client redis.UniversalClient, stream string) *Choreography {
	return &Choreography{log: log, svc: svc, client: client, stream: stream}
}

// Place records a new order; the participants take it from there. An
// order that exists is not placed again.
func (c *Choreography) Place(id, user string, lines []Line) error {
	_, err := c.log.Append(id, 0, Event{Type: Placed, User: user, Lines: lines, At: now(c.Now)})
	if errors.Is(err, ErrConflict) {
		return nil
	}
	return err
}

// Run runs the three participants until ctx ends, and returns ctx's error.
func (c *Choreography) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	for _, who := range []string{byStock, byPayments, byShipping} {
		wg.Go(func() { _ = Consume(ctx, c.client, c.stream, who, who, c.participant(who)) })
	}
	wg.Wait()
	return ctx.Err()
}

// participant returns the event handler of who.
func (c *Choreography) participant(who string) func(context.Context, Event) error {
	return func(ctx context.Context, e Event) error {
		o, err := c.log.Load(e.Order)
		if err != nil {
			return err
		}
		// Only the order's latest event calls for a step; an older one was
		// already acted on.
		if e.Seq != o.Version || o.Status.Final() || next(o).owner != who {
			return nil
		}
		ev, err := advance(ctx, c.svc, o, now(c.Now), c.GiveUp)
		if err != nil {
			return err
		}
		if _, err := c.log.Append(o.ID, o.Version, ev); err != nil && !errors.Is(err, ErrConflict) {
			return err
		}
		return nil
	}
}
