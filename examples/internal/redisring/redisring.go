// Package redisring places ids on several standalone Redis servers with a
// consistent-hash ring of package shard (shards named "0" to "n-1"), as
// the chat and feed services place conversations and users: each id's
// keys on the server the ring names and on no other, and few ids moving
// when a server is added.
//
// Guide: "Database Design → Sharding strategies" (consistent hashing).
package redisring

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/redis/go-redis/v9"

	"github.com/sysdesign-go/sysdesign/shard"
)

// ErrNilShard is returned by [New] for a nil server among the shards.
var ErrNilShard = errors.New("redisring: nil shard")

// Ring is a placement of ids on Redis servers. It is safe for concurrent
// use.
type Ring struct {
	dbs   []redis.UniversalClient
	place shard.Placement // nil with one server
}

// New returns a ring over shards or, with none, one that places every id
// on def.
func New(def redis.UniversalClient, shards []redis.UniversalClient) (*Ring, error) {
	if len(shards) == 0 {
		return &Ring{dbs: []redis.UniversalClient{def}}, nil
	}
	names := make([]string, len(shards))
	for i, c := range shards {
		if c == nil {
			return nil, fmt.Errorf("%w: Shards[%d]", ErrNilShard, i)
		}
		names[i] = strconv.Itoa(i)
	}
	ring, err := shard.NewRing(shard.NodesNamed(names...), shard.RingOptions{})
	if err != nil {
		return nil, err
	}
	return &Ring{dbs: shards, place: ring}, nil
}

// Len returns the number of servers.
func (r *Ring) Len() int { return len(r.dbs) }

// Index returns the index of the server holding id.
func (r *Ring) Index(id string) int {
	if r.place == nil {
		return 0
	}
	return r.place.Locate(id)
}

// DB returns the server holding id.
func (r *Ring) DB(id string) redis.UniversalClient { return r.dbs[r.Index(id)] }

// Shard returns server i.
func (r *Ring) Shard(i int) redis.UniversalClient { return r.dbs[i] }
