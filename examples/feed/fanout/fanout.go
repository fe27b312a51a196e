// Package fanout is the feed-generation rule of the social media feed
// (examples/feed) of the guide System Design Round — Principal Engineer
// Interview Preparation, "Real-World System Designs → 3. Social Media
// Feed" ("Feed Generation: Real-time vs batch processing"): which posts
// are pushed into followers' home timelines when written and which are
// merged into them when read. It is a package of its own, free of Redis
// and of the service, so the trade-off lab applies the same rule the
// service runs.
package fanout

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// ErrInvalid is wrapped by [Parse] errors.
var ErrInvalid = errors.New("fanout: invalid strategy")

// Strategy decides where a post goes: pushed into its author's
// followers' home timelines when it is written, or merged into them when
// they are read. It is one rule with three values — [OnWrite],
// [OnRead] and [Hybrid] — so every strategy runs through the same
// write and read paths and differs only in this threshold.
type Strategy struct {
	// Threshold is the follower count from which an author is pulled at
	// read time instead of pushed at write time: authors with fewer
	// followers are pushed, the others pulled. 0 pulls everyone;
	// math.MaxInt64 pushes everyone.
	Threshold int64
}

// The strategies of the guide's feed generation.
var (
	// OnWrite pushes every post into every follower's timeline:
	// reads are one sorted-set range, a post costs one insert per
	// follower.
	OnWrite = Strategy{Threshold: math.MaxInt64}
	// OnRead pushes nothing: a post costs nothing more than its
	// storing, a read merges every followee's recent posts.
	OnRead = Strategy{Threshold: 0}
)

// Hybrid pushes the posts of authors with fewer than threshold followers
// and pulls the others' at read time, as Twitter did for accounts with
// millions of followers.
func Hybrid(threshold int64) Strategy { return Strategy{Threshold: threshold} }

// Push reports whether a post of an author with followers followers is
// fanned out on write.
func (s Strategy) Push(followers int64) bool { return followers < s.Threshold }

// Pull reports whether the posts of a followee with followers followers
// are merged into home timelines at read time.
func (s Strategy) Pull(followers int64) bool { return !s.Push(followers) }

// String returns the strategy as [Parse] reads it.
func (s Strategy) String() string {
	switch s.Threshold {
	case OnWrite.Threshold:
		return "write"
	case OnRead.Threshold:
		return "read"
	}
	return "hybrid:" + strconv.FormatInt(s.Threshold, 10)
}

// Parse reads "write" (fan-out on write), "read" (fan-out on
// read) or "hybrid:N" (push for authors with fewer than N followers).
func Parse(s string) (Strategy, error) {
	switch s {
	case "write":
		return OnWrite, nil
	case "read":
		return OnRead, nil
	}
	if t, ok := strings.CutPrefix(s, "hybrid:"); ok {
		n, err := strconv.ParseInt(t, 10, 64)
		if err == nil && n > 0 && n < math.MaxInt64 {
			return Hybrid(n), nil
		}
	}
	return Strategy{}, fmt.Errorf("%w: %q (want write, read or hybrid:N with N a positive follower count)", ErrInvalid, s)
}
