// Package hashtag applies Redis Cluster's hash-tag rule to key prefixes,
// for the Redis-backed types whose operations must stay in one slot.
package hashtag

import "strings"

// Has reports whether every key that starts with prefix hashes by the same
// non-empty tag: prefix has a '{' followed, later in prefix, by a '}' with
// at least one byte between them. Redis Cluster then hashes only that tag,
// so all such keys share one slot.
func Has(prefix string) bool {
	i := strings.IndexByte(prefix, '{')
	return i >= 0 && strings.IndexByte(prefix[i+1:], '}') > 0
}
