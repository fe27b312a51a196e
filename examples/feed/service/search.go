package service

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/blevesearch/bleve/v2"
	"github.com/redis/go-redis/v9"

	"github.com/sysdesign-go/sysdesign/examples/internal/httpsec"
	"github.com/sysdesign-go/sysdesign/resilience"
)

// Search is full-text search over posts with bleve: one index per
// instance, on its local disk, fed from the post stream — a Redis Stream
// <prefix>posts:log to which every stored post is appended (capped at
// about a million entries). Each instance's indexer reads the stream from
// the last entry it indexed, which it keeps inside its index, so a
// restarted instance catches up and an index rebuilt from nothing replays
// what the stream still holds. Search is eventually consistent: a post is
// found once the indexer has read it, typically milliseconds later.
// Results are the stored posts (the index keeps only IDs and text),
// ranked by bleve's relevance, paged by offset.

// postLogMax bounds the post stream (XADD MAXLEN ~).
const postLogMax = 1_000_000

func (st *store) postLog() string { return st.prefix + "posts:log" }

// lastKey is where an index keeps the last stream entry it indexed.
var lastKey = []byte("feed:last-entry")

// indexedPost is what the index holds of a post.
type indexedPost struct {
	Text   string `json:"text"`
	Author string `json:"author"`
}

// openIndex opens, or creates, the index in dir.
func openIndex(dir string) (bleve.Index, error) {
	idx, err := bleve.Open(dir)
	if errors.Is(err, bleve.ErrorIndexPathDoesNotExist) {
		idx, err = bleve.New(dir, bleve.NewIndexMapping())
	}
	if err != nil {
		return nil, fmt.Errorf("feed: search index %s: %w", dir, err)
	}
	return idx, nil
}

// logPost appends p to the post stream.
func (s *Service) logPost(ctx context.Context, p Post) error {
	return s.cfg.Redis.XAdd(ctx, &redis.XAddArgs{Stream: s.st.postLog(), MaxLen: postLogMax, Approx: true,
		Values: []any{"id", p.ID, "text", p.Text}}).Err()
}

// index reads the post stream into the index until ctx ends; a Redis
// failure pauses it for BreakerOpen.
func (s *Service) index(ctx context.Context) {
	defer s.wg.Done()
	last, err := s.search.GetInternal(lastKey)
	if err != nil || len(last) == 0 {
		last = []byte("0")
	}
	for ctx.Err() == nil {
		res, err := s.cfg.Redis.XRead(ctx, &redis.XReadArgs{Streams: []string{s.st.postLog(), string(last)}, Count: 500, Block: time.Second}).Result()
		if errors.Is(err, redis.Nil) {
			continue
		}
		if err != nil {
			if ctx.Err() == nil {
				s.cfg.Logger.Warn("search indexer paused", "err", err)
				select {
				case <-ctx.Done():
				case <-time.After(s.cfg.BreakerOpen):
				}
			}
			continue
		}
		b := s.search.NewBatch()
		for _, str := range res {
			for _, m := range str.Messages {
				id, _ := m.Values["id"].(string)
				text, _ := m.Values["text"].(string)
				if _, author, ok := parsePostID(id); ok {
					if err := b.Index(id, indexedPost{Text: text, Author: author}); err != nil {
						s.cfg.Logger.Error("search: indexing", "post", id, "err", err)
					}
				}
				last = []byte(m.ID)
			}
		}
		b.SetInternal(lastKey, last)
		if err := s.search.Batch(b); err != nil {
			s.cfg.Logger.Error("search: writing the index", "err", err)
			return
		}
		s.metrics.indexed.Add(uint64(b.Size()))
	}
}

// SearchPage is a page of search results.
type SearchPage struct {
	Posts []Post `json:"posts"`
	// Total is the number of matching posts.
	Total uint64 `json:"total"`
	// NextCursor, when not empty, is the cursor of the next page.
	NextCursor string `json:"next_cursor,omitempty"`
}

// getSearch answers GET /api/v1/search?q=&cursor=&limit=: q is a bleve
// query string ("redis fan-out", "+author:alice cache", "text:celeb*").
func (s *Service) getSearch(w http.ResponseWriter, r *http.Request, _ string) {
	if s.search == nil {
		s.writeError(w, clientErr("not_found", "", "search is off"))
		return
	}
	q := r.URL.Query()
	text := q.Get("q")
	if strings.TrimSpace(text) == "" || len(text) > 500 || len(q["q"]) > 1 {
		s.writeError(w, clientErr("bad_query", "q", "q %q: want one query of 1 to 500 bytes", trunc(text)))
		return
	}
	query := bleve.NewQueryStringQuery(text)
	if _, err := query.Parse(); err != nil {
		s.writeError(w, clientErr("bad_query", "q", "q %q: %v", trunc(text), err))
		return
	}
	from, limit := 0, defaultLimit
	if v, ok := q["limit"]; ok {
		n, err := strconv.Atoi(v[0])
		if err != nil || n < 1 || n > 100 || len(v) > 1 {
			s.writeError(w, clientErr("bad_limit", "limit", "limit %q: want one integer from 1 to 100", trunc(strings.Join(v, ","))))
			return
		}
		limit = n
	}
	if v, ok := q["cursor"]; ok {
		n, err := strconv.Atoi(v[0])
		if err != nil || n < 1 || n > 10_000 || len(v) > 1 || strconv.Itoa(n) != v[0] {
			s.writeError(w, clientErr("bad_cursor", "cursor", "cursor %q: want the next_cursor of a previous page", trunc(strings.Join(v, ","))))
			return
		}
		from = n
	}
	req := bleve.NewSearchRequestOptions(query, limit, from, false)
	req.SortBy([]string{"-_score", "_id"}) // ties in a stable order, so pages neither repeat nor skip
	res, err := s.searchRun.Execute(r.Context(), func(ctx context.Context) (*bleve.SearchResult, error) {
		return s.search.SearchInContext(ctx, req)
	})
	switch {
	case errors.Is(err, resilience.ErrBulkheadFull) || errors.Is(err, resilience.ErrTimeout):
		s.metrics.searchRefused.Add(1)
		w.Header().Set("Retry-After", "1")
		httpsec.WriteProblem(w, &httpsec.Problem{Status: http.StatusServiceUnavailable, Code: "search_busy",
			Detail: "search is busy; retry later"})
		return
	case r.Context().Err() != nil:
		return // the client left
	case err != nil:
		s.writeError(w, clientErr("bad_query", "q", "q %q: %v", trunc(text), err))
		return
	}
	ids := make([]string, len(res.Hits))
	for i, h := range res.Hits {
		ids[i] = h.ID
	}
	page := SearchPage{Total: res.Total}
	if err := s.redis(r.Context(), func(ctx context.Context) (err error) {
		page.Posts, err = s.st.posts(ctx, ids)
		return err
	}); err != nil {
		s.writeError(w, err)
		return
	}
	if page.Posts == nil {
		page.Posts = []Post{}
	}
	if next := from + len(res.Hits); len(res.Hits) == limit && uint64(next) < res.Total {
		page.NextCursor = strconv.Itoa(next)
	}
	writeJSON(w, http.StatusOK, page)
}
