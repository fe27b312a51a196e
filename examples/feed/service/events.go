package service

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"time"
)

// The notification stream: every stored post is published once on the
// Redis channel <prefix>posts; each open stream (GET
// /api/v1/users/{id}/events, Server-Sent Events) subscribes to it and
// forwards the posts of its user's followees ("post" events) and the
// posts that mention the user as @id ("mention" events). Pub/sub is
// best-effort: a stream that is not connected misses what is published
// meanwhile, which the home timeline still shows — the durable path.
// One publish per post and one filter per stream keep a celebrity's post
// as cheap here as anyone's.

// Event is one notification.
type Event struct {
	// Type is "post" (a followee posted) or "mention" (a post names the
	// user as @id).
	Type string `json:"type"`
	Post Post   `json:"post"`
}

func (st *store) postsChannel() string { return st.prefix + "posts" }

// notify publishes p to the open streams; a failure loses only the live
// notification.
func (s *Service) notify(ctx context.Context, p Post) {
	b, _ := json.Marshal(p)
	if err := s.cfg.Redis.Publish(ctx, s.st.postsChannel(), b).Err(); err != nil {
		s.cfg.Logger.Debug("notification not published", "post", p.ID, "err", err)
	}
}

// mentionRE finds @mentions in a post's text.
var mentionRE = regexp.MustCompile(`@([A-Za-z0-9_-]{1,32})\b`)

// mentions reports whether text mentions user.
func mentions(text, user string) bool {
	for _, m := range mentionRE.FindAllStringSubmatch(text, -1) {
		if m[1] == user {
			return true
		}
	}
	return false
}

// getEvents streams the caller's notifications until the client leaves
// or the service closes. The first event, "ready", says the stream is
// subscribed: every post stored after it is seen.
func (s *Service) getEvents(w http.ResponseWriter, r *http.Request, user string) {
	id, err := self(r, user)
	if err != nil {
		s.writeError(w, err)
		return
	}
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	stop := context.AfterFunc(s.runCtx, cancel) // Close ends the stream
	defer stop()
	var following map[string]bool
	refresh := func(ctx context.Context) error {
		return s.redis(ctx, func(ctx context.Context) error {
			if err := s.st.exists(ctx, id); err != nil {
				return err
			}
			fs, err := s.st.db(id).SMembers(ctx, s.st.key(id, "following")).Result()
			following = make(map[string]bool, len(fs))
			for _, f := range fs {
				following[f] = true
			}
			return err
		})
	}
	if err := refresh(ctx); err != nil {
		s.writeError(w, err)
		return
	}
	sub := s.cfg.Redis.Subscribe(ctx, s.st.postsChannel())
	defer sub.Close()
	if _, err := sub.Receive(ctx); err != nil {
		s.writeError(w, fmt.Errorf("%w: subscribing: %w", ErrUnavailable, err))
		return
	}
	rc := http.NewResponseController(w)
	_ = rc.SetWriteDeadline(time.Time{}) // a stream outlives the server's write timeout
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	send := func(event string, v any) error {
		b, _ := json.Marshal(v)
		if _, err := fmt.Fprintf(w, "event: %s\ndata: %s\n\n", event, b); err != nil {
			return err
		}
		return rc.Flush()
	}
	if send("ready", map[string]string{"user": id}) != nil {
		return
	}
	msgs := sub.Channel()
	tick := time.NewTicker(s.cfg.CountTTL) // refreshes the followees, keeps the connection alive
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			_ = refresh(ctx) // on failure the last followees stay
			if _, err := fmt.Fprint(w, ": keep-alive\n\n"); err != nil || rc.Flush() != nil {
				return
			}
		case m, ok := <-msgs:
			if !ok {
				return
			}
			var p Post
			if json.Unmarshal([]byte(m.Payload), &p) != nil || p.Author == id {
				continue
			}
			var ev Event
			switch {
			case mentions(p.Text, id):
				ev = Event{Type: "mention", Post: p}
			case following[p.Author]:
				ev = Event{Type: "post", Post: p}
			default:
				continue
			}
			if send(ev.Type, ev) != nil {
				return
			}
		}
	}
}
