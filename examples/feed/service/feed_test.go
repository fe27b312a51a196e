package service_test

import (
	"fmt"
	"net/http"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sysdesign-go/sysdesign/examples/feed/fanout"
	"github.com/sysdesign-go/sysdesign/examples/feed/service"
	"github.com/sysdesign-go/sysdesign/internal/redistest"
)

// roles are the users of scenario, by the part each plays.
var roles = []string{"celeb", "ann", "bob", "cat", "dan", "eve"}

// scenario builds one graph — a celebrity followed by everyone, ordinary
// users following a few — and posts; it returns every user's whole home
// timeline, read in pages of 3, once every fan-out job has run. users
// names the six roles (nil: the roles' own names).
func scenario(t *testing.T, e *env, users ...string) map[string][]string {
	if users == nil {
		users = roles
	}
	celeb, ann, bob, cat, dan, eve := users[0], users[1], users[2], users[3], users[4], users[5]
	for _, u := range users {
		e.user(u)
	}
	for _, u := range users[1:] {
		e.follow(u, celeb)
	}
	e.follow(ann, bob)
	e.follow(bob, ann)
	e.follow(cat, ann)
	e.follow(dan, eve)
	e.follow(eve, dan)
	posts := 0
	for i := range 4 {
		for _, u := range users {
			e.post(u, fmt.Sprintf("%s says %d", u, i))
			posts++
		}
	}
	// An unfollow after the posts were pushed: ann's posts leave cat's
	// home timeline whatever the strategy.
	e.must(http.StatusNoContent, cat, "DELETE", "/api/v1/users/"+cat+"/following/"+ann, nil, nil)
	e.settle(uint64(posts))
	out := map[string][]string{}
	for _, u := range users {
		out[u] = e.home(u, 3)
		all := e.home(u, 100)
		require.Equal(t, all, out[u], "%s: pages of 3 and one page of 100 list the same posts", u)
	}
	return out
}

// The three strategies show every user the same home timeline for the
// same graph and posts: each user's own posts and those of whom they
// follow, newest first, nothing of an unfollowed author.
func TestStrategiesShowTheSameTimelines(t *testing.T) {
	redistest.Each(t, func(t *testing.T, db *redistest.DB) {
		var first map[string][]string
		for i, st := range []fanout.Strategy{fanout.OnWrite, fanout.OnRead, fanout.Hybrid(3)} {
			sub := *db // a key space per strategy, under the test's prefix
			sub.Prefix = fmt.Sprintf("%ss%d:", db.Prefix, i)
			e := newEnv(t, &sub, service.Config{Strategy: st}, false)
			got := scenario(t, e)
			// 4 posts each by celeb, own (4) and the followees'.
			assert.Len(t, got["cat"], 8, "%v: cat sees celeb and self, not ann after unfollowing", st)
			assert.Len(t, got["ann"], 12, "%v: ann sees celeb, bob and self", st)
			for u, ids := range got {
				assert.True(t, slices.IsSortedFunc(ids, func(a, b string) int { return -compareIDs(a, b) }), "%v: %s newest first", st, u)
			}
			if first == nil {
				first = got
				continue
			}
			assert.Equal(t, first, got, "%v shows what %v showed", st, fanout.OnWrite)
		}
	})
}

func compareIDs(a, b string) int {
	var x, y int
	_, _ = fmt.Sscanf(a, "%d-", &x)
	_, _ = fmt.Sscanf(b, "%d-", &y)
	return x - y
}

// In hybrid mode a celebrity's post is not pushed — nothing is written
// to the followers' home timelines — and reaches them at read time.
func TestHybridPullsCelebrity(t *testing.T) {
	e := newEnv(t, nil, service.Config{Strategy: fanout.Hybrid(2)}, false)
	for _, u := range []string{"celeb", "a", "b", "c"} {
		e.user(u)
	}
	e.follow("a", "celeb")
	e.follow("b", "celeb")
	e.follow("c", "a")
	p := e.post("celeb", "to my many fans")
	q := e.post("a", "to my one follower")
	e.settle(2)
	st := e.svc.Stats()
	assert.Equal(t, uint64(1), st.Pushed, "only a's post is pushed")
	assert.Equal(t, uint64(1), st.TimelineInserts, "a's post into c's timeline; none for the celebrity's")
	assert.Equal(t, []string{p.ID}, e.home("b", 10))
	assert.Equal(t, []string{q.ID, p.ID}, e.home("a", 10))
	assert.Equal(t, []string{q.ID}, e.home("c", 10))
}

// The author sees a post at once, in the reply to the post and on the
// next read of their home timeline (read-your-writes); a follower sees it
// once the fan-out job has run (eventually).
func TestReadYourWritesFollowersEventually(t *testing.T) {
	e := newEnv(t, nil, service.Config{Strategy: fanout.OnWrite}, false)
	e.user("author")
	e.user("fan")
	e.follow("fan", "author")
	p := e.post("author", "hello")
	assert.Equal(t, []string{p.ID}, e.home("author", 10), "the author's next read shows the post")
	eventually(t, func() bool { return slices.Contains(e.home("fan", 10), p.ID) }, "the follower sees %s", p.ID)
	assert.Equal(t, uint64(1), e.svc.Stats().TimelineInserts)
}

// A post resent with the same Idempotency-Key (a retry after a lost
// reply) answers the stored post and stores nothing more.
func TestIdempotentPost(t *testing.T) {
	e := newEnv(t, nil, service.Config{}, false)
	e.user("u")
	var ids []string
	for range 2 {
		code, b, _ := e.do("u", "POST", "/api/v1/posts", service.NewPost{Text: "once"}, "Idempotency-Key", "k1")
		require.Equal(t, http.StatusCreated, code, "%s", b)
		var p service.Post
		require.NoError(t, jsonUnmarshal(b, &p))
		ids = append(ids, p.ID)
	}
	assert.Equal(t, ids[0], ids[1])
	assert.Equal(t, []string{ids[0]}, e.home("u", 10))
	assert.Equal(t, uint64(1), e.svc.Stats().Posts)
	var got service.Post
	e.must(http.StatusOK, "u", "GET", "/api/v1/posts/"+ids[0], nil, &got)
	assert.Equal(t, "once", got.Text)
}

// Following someone with the fan-out on write brings their recent posts
// into the home timeline at once, not at their next post.
func TestFollowBackfills(t *testing.T) {
	e := newEnv(t, nil, service.Config{Strategy: fanout.OnWrite}, false)
	e.user("a")
	e.user("b")
	p := e.post("b", "before you came")
	e.settle(1)
	e.follow("a", "b")
	assert.Equal(t, []string{p.ID}, e.home("a", 10))
	var u service.User
	e.must(http.StatusOK, "a", "GET", "/api/v1/users/b", nil, &u)
	assert.Equal(t, int64(1), u.Followers)
}

// Home timelines keep TimelineCap entries: the oldest pushed posts fall
// off.
func TestTimelineCap(t *testing.T) {
	e := newEnv(t, nil, service.Config{Strategy: fanout.OnWrite, TimelineCap: 3}, false)
	e.user("a")
	e.user("b")
	e.follow("a", "b")
	var want []string
	for i := range 5 {
		want = append([]string{e.post("b", fmt.Sprint(i)).ID}, want...)
	}
	e.settle(5)
	assert.Equal(t, want[:3], e.home("a", 2))
	n, err := e.db.Client.ZCard(t.Context(), e.db.Prefix+"u:{a}:home").Result()
	require.NoError(t, err)
	assert.Equal(t, int64(3), n)
}
