// Package resilience implements GUIDE.md, "Fault Tolerance": circuit
// breakers, failover, timeouts, retries, fallbacks, graceful degradation
// and chaos engineering; also "Microservices → Circuit Breakers".
package resilience
