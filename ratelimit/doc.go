// Package ratelimit implements GUIDE.md, "Security Considerations → Rate
// Limiting" (token bucket, leaky bucket, sliding window, IP-based and
// user-based limits), with "API Design → Rate Limiting".
package ratelimit
