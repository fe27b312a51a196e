// Package order runs the shop's orders as a saga, from the guide's
// "Real-World System Designs → 4. E-commerce Platform" (Order Processing:
// workflow management) and "Advanced System Design Topics →
// Event-Driven Architecture" (event sourcing, CQRS, the saga pattern,
// event choreography).
//
// An order takes three steps on three services — reserve stock, charge the
// payment, create the shipment — and has no distributed transaction to make
// them atomic. Each step has a compensation (release the stock, refund the
// payment, cancel the shipment); when a step fails for good, the saga runs
// every compensation, so a failed order leaves nothing behind.
//
//   - [Log] is the event store: an order's state is never stored, only its
//     [Event]s, and [Replay] rebuilds it. An append writes the events and
//     their outbox entries in one bbolt transaction, so an event is
//     published if and only if it happened.
//   - [Relay] publishes the outbox to a Redis Stream at least once;
//     [Consume] reads a stream with a consumer group, and consumers dedupe
//     by (order, sequence), so a redelivered event is applied once.
//   - [Orchestrator] drives each order step by step from its event log, and
//     on restart resumes every order left unfinished ([Orchestrator.Recover]).
//   - [Choreography] is the same saga without a coordinator: each service
//     reacts to the events of the others.
//   - [OrderList] is the read model (CQRS): a user's orders, newest first,
//     kept in Redis by a consumer of the stream.
//
// Every step is idempotent — stock holds are per order, charges carry the
// order's idempotency key, shipments are per order — so resuming a step
// whose outcome a crash hid never repeats its effect.
package order
