// Package payment is the shop's payment processing, from the guide's
// "Real-World System Designs → 4. E-commerce Platform" (Payment
// Processing: secure transactions) and "Security & Reliability → Fault
// Tolerance" (timeouts, retries, circuit breakers).
//
// [Provider] simulates a card processor in process, with the faults real
// ones show: errors, lost answers (the charge happens, the reply never
// arrives), slow answers, declines and duplicate callbacks. [Client] calls
// it through the library's resilience policies — a retry with jittered
// backoff and a retry budget, outside a circuit breaker, outside a
// per-attempt timeout — and sends every attempt of a charge with the same
// idempotency key, so the provider charges it once however many times it
// is asked: a retry after a lost answer never charges twice.
package payment
