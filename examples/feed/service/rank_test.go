package service_test

import (
	"math"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sysdesign-go/sysdesign/examples/feed/fanout"
	"github.com/sysdesign-go/sysdesign/examples/feed/service"
	"github.com/sysdesign-go/sysdesign/internal/redistest"
)

// The score halves every half-life and grows with the logarithm of
// engagement.
func TestRankingScore(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	k := service.Ranking{HalfLife: time.Hour, LikeWeight: 1, ReplyWeight: 2}
	fresh := service.Post{Created: now}
	assert.InDelta(t, 1, k.Score(fresh, now), 1e-12)
	assert.InDelta(t, 0.5, k.Score(service.Post{Created: now.Add(-time.Hour)}, now), 1e-12)
	liked := service.Post{Created: now, Likes: 9, Replies: 1}
	assert.InDelta(t, 1+2.302585+2*0.693147, k.Score(liked, now), 1e-5)
	// 9 likes lift a post above one an hour newer, not above one a day newer.
	old := service.Post{Created: now.Add(-time.Hour), Likes: 9}
	assert.Greater(t, k.Score(old, now), k.Score(fresh, now))
	assert.Less(t, k.Score(service.Post{Created: now.Add(-24 * time.Hour), Likes: 9}, now), k.Score(fresh, now))
}

// Likes and replies are counted once per user and per reply, and with
// ranking on a liked post rises above newer ones within the page; the
// chronological default ignores them.
func TestLikesRepliesAndRanking(t *testing.T) {
	for _, ranked := range []bool{false, true} {
		cfg := service.Config{Strategy: fanout.OnRead}
		if ranked {
			cfg.Ranking = service.Ranking{HalfLife: time.Hour, LikeWeight: 1, ReplyWeight: 1}
		}
		e := newEnv(t, nil, cfg, false)
		for _, u := range []string{"a", "b", "c"} {
			e.user(u)
		}
		e.follow("c", "a")
		e.follow("c", "b")
		old := e.post("a", "old but liked")
		mid := e.post("b", "middle")
		var reply service.Post
		e.must(http.StatusCreated, "c", "POST", "/api/v1/posts", service.NewPost{Text: "agreed", ReplyTo: old.ID}, &reply)
		assert.Equal(t, old.ID, reply.ReplyTo)
		for _, u := range []string{"b", "c", "c"} { // c likes twice: counted once
			var got struct{ Likes int64 }
			e.must(http.StatusOK, u, "PUT", "/api/v1/posts/"+old.ID+"/like", nil, &got)
		}
		var p service.Post
		e.must(http.StatusOK, "c", "GET", "/api/v1/posts/"+old.ID, nil, &p)
		assert.Equal(t, int64(2), p.Likes)
		assert.Equal(t, int64(1), p.Replies)
		got := e.home("c", 10)
		if ranked {
			assert.Equal(t, []string{old.ID, reply.ID, mid.ID}, got, "the liked post first")
		} else {
			assert.Equal(t, []string{reply.ID, mid.ID, old.ID}, got, "newest first")
		}
	}
	e := newEnv(t, nil, service.Config{}, false)
	e.user("a")
	code, b, _ := e.do("a", "PUT", "/api/v1/posts/5-a/like", nil)
	assert.Equal(t, http.StatusNotFound, code, "%s", b)
	code, b, _ = e.do("a", "POST", "/api/v1/posts", service.NewPost{Text: "x", ReplyTo: "9-a"})
	assert.Equal(t, http.StatusNotFound, code, "%s", b)
	code, b, _ = e.do("a", "POST", "/api/v1/posts", service.NewPost{Text: "x", ReplyTo: "nine"})
	require.Equal(t, http.StatusBadRequest, code, "%s", b)
}

func TestBadRanking(t *testing.T) {
	db := redistest.New(t)
	auth := func(*http.Request) (string, error) { return "a", nil }
	for _, k := range []service.Ranking{{HalfLife: -1}, {HalfLife: time.Hour, LikeWeight: -1}, {HalfLife: time.Hour, ReplyWeight: math.NaN()}} {
		_, err := service.New(t.Context(), service.Config{Redis: db.Client, Prefix: db.Prefix, Authenticate: auth, Ranking: k})
		require.ErrorIs(t, err, service.ErrInvalidConfig)
		assert.Contains(t, err.Error(), "ranking")
	}
}
