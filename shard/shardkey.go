package shard

import "strings"

// HashTag returns the part of key between the first "{" and the next "}",
// or the whole key when there is no such non-empty part — Redis Cluster's
// hash-tag rule. As a shard-key function ([RouterOptions.ShardKey],
// [MigrationOptions.ShardKey], [PlanOptions.ShardKey]) it keeps related
// rows on one shard: "{user:42}:profile" and "{user:42}:orders:7" share the
// shard key "user:42", so a user's rows can be read together without a
// cross-shard query.
//
// Choosing the shard key is the guide's "shard key selection: choose based
// on access patterns": the key of the entity most queries are scoped to
// (user, tenant, order), with enough distinct values to spread the load
// and none so hot that its shard saturates.
func HashTag(key string) string {
	i := strings.IndexByte(key, '{')
	if i < 0 {
		return key
	}
	j := strings.IndexByte(key[i+1:], '}')
	if j <= 0 {
		return key
	}
	return key[i+1 : i+1+j]
}
