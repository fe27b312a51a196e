package main

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/sysdesign-go/sysdesign/examples/feed/service"
	"github.com/sysdesign-go/sysdesign/internal/sim"
)

// notifications is what the event streams were due and what they got.
type notifications struct {
	mu       sync.Mutex
	due      map[string]int             // post ID → streams due to show it
	got      map[string]map[string]bool // post ID → users whose stream showed it
	delay    *sim.Recorder              // from the post's creation to its showing
	watching map[int]bool               // users holding a stream
}

func newNotifications(watching []int) *notifications {
	n := &notifications{due: map[string]int{}, got: map[string]map[string]bool{}, delay: sim.NewRecorder(), watching: map[int]bool{}}
	for _, u := range watching {
		n.watching[u] = true
	}
	return n
}

// expect records that post id by author, mentioning mentioned (−1: no
// one), is due on the stream of every watching follower of author and of
// the mentioned user.
func (n *notifications) expect(g *graph, id string, author, mentioned int) {
	due := 0
	if mentioned >= 0 && mentioned != author && n.watching[mentioned] {
		due++
	}
	for _, f := range g.followers[author] {
		if n.watching[f] && f != mentioned {
			due++
		}
	}
	n.mu.Lock()
	n.due[id] += due
	n.mu.Unlock()
}

// shown records a post shown on user's stream.
func (n *notifications) shown(user string, p service.Post) {
	n.delay.Record(time.Since(p.Created))
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.got[p.ID] == nil {
		n.got[p.ID] = map[string]bool{}
	}
	n.got[p.ID][user] = true
}

// counts returns the notifications due for acknowledged posts and those
// of them shown.
func (n *notifications) counts() (due, shown int) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for id, d := range n.due {
		due += d
		shown += min(d, len(n.got[id]))
	}
	return due, shown
}

// stream holds user's event stream open until ctx ends, reconnecting
// when it breaks; ready is closed once the first stream is subscribed.
func stream(ctx context.Context, c *client, hc *http.Client, g *graph, user int, n *notifications, ready chan<- struct{}) {
	once := sync.OnceFunc(func() { close(ready) })
	defer once()
	for ctx.Err() == nil {
		req, err := http.NewRequestWithContext(ctx, "GET", c.url+"/api/v1/users/"+g.users[user]+"/events", nil)
		if err != nil {
			return
		}
		req.Header.Set("Authorization", "Bearer "+c.tokens[user])
		resp, err := hc.Do(req)
		if err == nil && resp.StatusCode == http.StatusOK {
			sc := bufio.NewScanner(resp.Body)
			event := ""
			for sc.Scan() {
				line := sc.Text()
				switch {
				case strings.HasPrefix(line, "event: "):
					event = strings.TrimPrefix(line, "event: ")
				case strings.HasPrefix(line, "data: ") && event == "ready":
					once()
				case strings.HasPrefix(line, "data: ") && (event == "post" || event == "mention"):
					var ev service.Event
					if json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &ev) == nil {
						n.shown(g.users[user], ev.Post)
					}
				}
			}
		}
		if resp != nil {
			_ = resp.Body.Close()
		}
		select { // the stream broke (Redis cut, 503): connect again
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// searchTotal runs a search and returns its status and total.
func (c *client) search(ctx context.Context, user int, q string) (int, uint64, error) {
	code, b, err := c.do(ctx, user, "GET", "/api/v1/search?q="+url.QueryEscape(q), "")
	var p service.SearchPage
	if err == nil && code == http.StatusOK {
		err = json.Unmarshal(b, &p)
	}
	return code, p.Total, err
}

// indexProbe polls a search for the post's unique word until it is
// found, and returns the time since acked.
func indexProbe(ctx context.Context, c *client, word string, acked time.Time) (time.Duration, bool) {
	deadline := acked.Add(20 * time.Second)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if code, total, err := c.search(ctx, 0, word); err == nil && code == http.StatusOK && total > 0 {
			return time.Since(acked), true
		}
		time.Sleep(5 * time.Millisecond)
	}
	return 0, false
}

// topics are the words posts are about, and searches look for.
var topics = strings.Fields("redis cache shard queue stream replica leader quorum latency throughput index search " +
	"timeline follower celebrity ranking breaker timeout retry backoff bloom partition consistency gossip lease")
