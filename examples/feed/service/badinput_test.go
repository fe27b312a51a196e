package service_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sysdesign-go/sysdesign/examples/feed/service"
	"github.com/sysdesign-go/sysdesign/examples/internal/httpsec"
)

// Every bad request of the list — empty or oversized posts,
// following oneself, unknown users, invalid cursors — and the other ways
// to get a request wrong are a 4xx problem+json that names the value at
// fault, never a 5xx.
func TestBadInput(t *testing.T) {
	e := newEnv(t, nil, service.Config{}, false)
	e.user("alice")
	e.user("bob")
	long := strings.Repeat("é", 281)
	ref := "sha256:" + strings.Repeat("a", 64)
	for _, c := range []struct {
		name, user, method, path string
		body                     any
		hdr                      []string
		status                   int
		code, field, detail      string
	}{
		{"empty post", "alice", "POST", "/api/v1/posts", `{"text":"  "}`, nil, 400, "empty_post", "text", "empty"},
		{"post over 280 characters", "alice", "POST", "/api/v1/posts", service.NewPost{Text: long}, nil, 400, "too_long", "text", "281 characters exceeds 280"},
		{"body over the limit", "alice", "POST", "/api/v1/posts", `{"text":"` + strings.Repeat("x", 17<<10) + `"}`, nil, 413, "too_large", "", "exceeds"},
		{"five media", "alice", "POST", "/api/v1/posts", service.NewPost{Text: "x", Media: []string{ref, ref, ref, ref, ref}}, nil, 400, "too_many_media", "media", "5 media"},
		{"bad media reference", "alice", "POST", "/api/v1/posts", service.NewPost{Text: "x", Media: []string{"http://x"}}, nil, 400, "bad_media", "media", `"http://x"`},
		{"malformed JSON", "alice", "POST", "/api/v1/posts", `{"text":`, nil, 400, "malformed_json", "", "JSON"},
		{"unknown field", "alice", "POST", "/api/v1/posts", `{"text":"x","author":"bob"}`, nil, 400, "malformed_json", "", "author"},
		{"trailing data", "alice", "POST", "/api/v1/posts", `{"text":"x"}{}`, nil, 400, "malformed_json", "", "trailing"},
		{"not UTF-8", "alice", "POST", "/api/v1/posts", "{\"text\":\"\xff\"}", nil, 400, "invalid_utf8", "", "UTF-8"},
		{"not JSON", "alice", "POST", "/api/v1/posts", `x`, []string{"Content-Type", "text/plain"}, 415, "unsupported", "", "text/plain"},
		{"bad idempotency key", "alice", "POST", "/api/v1/posts", service.NewPost{Text: "x"}, []string{"Idempotency-Key", "a b"}, 422, "idempotency_key", "Idempotency-Key", `"a b"`},
		{"no token", "", "POST", "/api/v1/posts", service.NewPost{Text: "x"}, nil, 401, "unauthorized", "", "no bearer token"},
		{"bad token", "", "GET", "/api/v1/users/alice", nil, []string{"Authorization", "Bearer x.y.z"}, 401, "unauthorized", "", "invalid token"},
		{"poster without profile", "carol", "POST", "/api/v1/posts", service.NewPost{Text: "x"}, nil, 404, "unknown_user", "user", `"carol"`},
		{"follow oneself", "alice", "PUT", "/api/v1/users/alice/following/alice", nil, nil, 400, "follow_self", "target", "themselves"},
		{"follow unknown user", "alice", "PUT", "/api/v1/users/alice/following/nobody", nil, nil, 404, "unknown_user", "user", `"nobody"`},
		{"follow as another", "alice", "PUT", "/api/v1/users/bob/following/alice", nil, nil, 403, "forbidden", "id", `"bob"`},
		{"bad target", "alice", "PUT", "/api/v1/users/alice/following/a%7Bb%7D", nil, nil, 400, "bad_user", "target", `"a{b}"`},
		{"unknown user", "alice", "GET", "/api/v1/users/nobody", nil, nil, 404, "unknown_user", "user", `"nobody"`},
		{"unknown user's posts", "alice", "GET", "/api/v1/users/nobody/posts", nil, nil, 404, "unknown_user", "user", `"nobody"`},
		{"another's home", "alice", "GET", "/api/v1/users/bob/home", nil, nil, 403, "forbidden", "id", `"bob"`},
		{"cursor not a number", "alice", "GET", "/api/v1/users/alice/home?cursor=abc", nil, nil, 400, "bad_cursor", "cursor", `"abc"`},
		{"negative cursor", "alice", "GET", "/api/v1/users/alice/posts?cursor=-5", nil, nil, 400, "bad_cursor", "cursor", `"-5"`},
		{"cursor with a sign", "alice", "GET", "/api/v1/users/alice/posts?cursor=%2B5", nil, nil, 400, "bad_cursor", "cursor", `"+5"`},
		{"two cursors", "alice", "GET", "/api/v1/users/alice/posts?cursor=5&cursor=6", nil, nil, 400, "bad_cursor", "cursor", `"5,6"`},
		{"limit zero", "alice", "GET", "/api/v1/users/alice/home?limit=0", nil, nil, 400, "bad_limit", "limit", `"0"`},
		{"limit over 100", "alice", "GET", "/api/v1/users/alice/home?limit=101", nil, nil, 400, "bad_limit", "limit", `"101"`},
		{"bad post ID", "alice", "GET", "/api/v1/posts/abc", nil, nil, 400, "bad_post", "id", `"abc"`},
		{"unknown post", "alice", "GET", "/api/v1/posts/99-alice", nil, nil, 404, "unknown_post", "id", `"99-alice"`},
		{"profile of another", "alice", "POST", "/api/v1/users", service.NewUser{ID: "dave", Name: "Dave"}, nil, 403, "forbidden", "id", `"dave"`},
		{"existing profile", "alice", "POST", "/api/v1/users", service.NewUser{ID: "alice", Name: "A"}, nil, 409, "exists", "id", `"alice"`},
		{"empty name", "erin", "POST", "/api/v1/users", service.NewUser{ID: "erin", Name: " "}, nil, 400, "bad_name", "name", "name"},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, b, h := e.do(c.user, c.method, c.path, c.body, c.hdr...)
			require.Equal(t, c.status, code, "%s", b)
			assert.Equal(t, "application/problem+json", h.Get("Content-Type"))
			var p httpsec.Problem
			require.NoError(t, json.Unmarshal(b, &p))
			assert.Equal(t, c.code, p.Code)
			assert.Equal(t, c.field, p.Field)
			assert.Contains(t, p.Detail, c.detail)
		})
	}
	// Nothing above was stored.
	var page service.Page
	e.must(http.StatusOK, "alice", "GET", "/api/v1/users/alice/posts", nil, &page)
	assert.Empty(t, page.Posts)
}

// Writes are limited per user, with the IETF RateLimit headers, and a
// refusal is problem+json with Retry-After.
func TestWriteRateLimit(t *testing.T) {
	e := newEnv(t, nil, service.Config{WriteLimit: limit(1, 2)}, false)
	e.user("alice") // 1 of the burst of 2
	code, _, h := e.do("alice", "POST", "/api/v1/posts", service.NewPost{Text: "x"})
	require.Equal(t, http.StatusCreated, code)
	assert.NotEmpty(t, h.Get("RateLimit"))
	code, b, h := e.do("alice", "POST", "/api/v1/posts", service.NewPost{Text: "y"})
	require.Equal(t, http.StatusTooManyRequests, code, "%s", b)
	assert.Equal(t, "application/problem+json", h.Get("Content-Type"))
	assert.NotEmpty(t, h.Get("Retry-After"))
	// Another user has a limit of their own; reads are not limited.
	e.user("bob")
	e.must(http.StatusOK, "alice", "GET", "/api/v1/users/alice/home", nil, nil)
}
