package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/sysdesign-go/sysdesign/examples/chat/client"
	"github.com/sysdesign-go/sysdesign/examples/chat/service"
	"github.com/sysdesign-go/sysdesign/examples/internal/lab"
	"github.com/sysdesign-go/sysdesign/ratelimit"
)

var chatFanoutExperiment = lab.Experiment{
	Name:      "chat-fanout",
	Group:     "chat",
	Title:     "Group messages fanned out on write versus at read time, against group size (real gateway and Redis, wall clock)",
	Section:   chatSection,
	Guide:     "Group Chats: Message broadcasting",
	WallClock: true,
	Run:       runChatFanout,
}

type chatFanoutCell struct {
	mode         string
	size         int
	writesPerMsg float64       // inbox copies per message
	send         time.Duration // p50 from send to "sent"
	sync         time.Duration // an offline member's connect to its last message
}

// measureChatFanout sends k messages to a group of size members, fanned
// out on write (every member's inbox gets a copy before "sent") or at read
// time (the group's log only), and times the sends and an offline
// member's sync of the k messages.
func measureChatFanout(ctx context.Context, onWrite bool, size, k int) (*chatFanoutCell, string, error) {
	limit, mode := 1, "read"
	if onWrite {
		limit, mode = 1<<20, "write"
	}
	c, skipped, err := startChat(ctx, service.Config{FanOutLimit: limit, UserLimit: chatNoLimit, ConnLimit: chatNoLimit})
	if skipped != "" || err != nil {
		return nil, skipped, err
	}
	defer c.close()
	members := make([]string, size)
	for i := range members {
		members[i] = fmt.Sprintf("u%d", i)
	}
	body, _ := json.Marshal(map[string]any{"id": "g", "members": members})
	tok, _ := c.tokens.Issue("u0", time.Hour)
	req, _ := http.NewRequestWithContext(ctx, "POST", c.url+"/api/v1/groups", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+tok)
	hc := &http.Client{Transport: &http.Transport{}}
	defer hc.CloseIdleConnections()
	resp, err := hc.Do(req)
	if err != nil {
		return nil, "", err
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		return nil, "", fmt.Errorf("lab: create group of %d: %s", size, resp.Status)
	}
	sender, err := c.dial(ctx, "u0")
	if err != nil {
		return nil, "", err
	}
	defer sender.CloseNow()
	var sends []time.Duration
	for i := range k {
		start := time.Now()
		if err := sender.Send(ctx, "g:g", fmt.Sprintf("m%d", i), "hello group"); err != nil {
			return nil, "", err
		}
		for {
			f, err := sender.Read(ctx)
			if err != nil {
				return nil, "", err
			}
			if f.Type == "error" {
				return nil, "", fmt.Errorf("lab: send refused: %s", f.Detail)
			}
			if f.Type == "sent" {
				break
			}
		}
		sends = append(sends, time.Since(start))
	}
	cell := &chatFanoutCell{mode: mode, size: size, writesPerMsg: float64(c.svc.Stats().FannedOutWrite) / float64(k)}
	slices.Sort(sends)
	cell.send = sends[len(sends)/2]

	start := time.Now()
	reader, err := c.dial(ctx, "u1")
	if err != nil {
		return nil, "", err
	}
	defer reader.CloseNow()
	var order client.Order
	for order.Shown("g:g") < int64(k) {
		f, err := reader.Read(ctx)
		if err != nil {
			return nil, "", err
		}
		if f.Type == "msg" {
			order.Accept(f)
		}
	}
	cell.sync = time.Since(start)
	return cell, "", nil
}

// chatNoLimit keeps the rate limits out of the measurement.
var chatNoLimit = ratelimit.Limit{Events: 1_000_000, Per: time.Second, Burst: 1_000_000}

func runChatFanout(ctx context.Context, env *lab.Env) (*lab.Result, error) {
	sizes := []int{2, 8, 32, 128, 512}
	if env.Quick {
		sizes = []int{2, 16, 128}
	}
	k := env.Scale(100, 20)
	var cells []*chatFanoutCell
	for _, size := range sizes {
		for _, onWrite := range []bool{true, false} {
			c, skipped, err := measureChatFanout(ctx, onWrite, size, k)
			if err != nil {
				return nil, err
			}
			if skipped != "" {
				return &lab.Result{Reason: "Not measured: " + skipped + ".", Notes: []string{"Skipped: " + skipped + "."}}, nil
			}
			cells = append(cells, c)
		}
	}
	t := lab.NewTable(fmt.Sprintf("%d messages to one group through one gateway and the real Redis, then one offline member connects", k),
		"fan-out", "group size", "inbox copies per message", "send p50", "offline member's sync")
	send := map[string]*lab.Series{"write": {Name: "fan-out on write: send p50"}, "read": {Name: "fan-out at read time: send p50"}}
	for _, c := range cells {
		t.AddRow(c.mode, c.size, c.writesPerMsg, c.send, c.sync)
		s := send[c.mode]
		s.X, s.Y = append(s.X, float64(c.size)), append(s.Y, float64(c.send.Microseconds())/1000)
	}
	chart := &lab.Chart{Title: "Send latency against group size", XLabel: "group size (members)", YLabel: "send p50 (ms)",
		Series: []lab.Series{*send["write"], *send["read"]}}
	verdict, reason := chatFanoutVerdict(cells)
	return &lab.Result{Verdict: verdict, Reason: reason, Tables: []*lab.Table{t}, Charts: []*lab.Chart{chart}, Notes: []string{
		"Fan-out on write copies each message into every member's inbox (one pipelined XADD per member) before the sender hears \"sent\": the work per message grows with the group, and an offline member reads one inbox for all its conversations. At read time a message is written once and broadcast once on the group's channel; each member's sync reads the group's log from its acknowledgement, one read per group it belongs to.",
		"The gateway's -fanout-limit picks per group: small groups on write (cheap, and one inbox read at reconnect), large ones at read time, where per-member copies would dominate the send.",
	}}, ctx.Err()
}

// chatFanoutVerdict judges "message broadcasting" in groups: fanning out
// on write costs work that grows with the group, fanning out at read time
// does not.
func chatFanoutVerdict(cells []*chatFanoutCell) (lab.Verdict, string) {
	small, large := map[string]*chatFanoutCell{}, map[string]*chatFanoutCell{}
	for _, c := range cells {
		if s, ok := small[c.mode]; !ok || c.size < s.size {
			small[c.mode] = c
		}
		if l, ok := large[c.mode]; !ok || c.size > l.size {
			large[c.mode] = c
		}
	}
	w, r := large["write"], large["read"]
	if w == nil || r == nil {
		return 0, "Not measured."
	}
	growW := float64(w.send) / float64(max(1, small["write"].send))
	growR := float64(r.send) / float64(max(1, small["read"].send))
	numbers := fmt.Sprintf("from %d to %d members, a send fanned out on write took %.1f× longer (%.0f inbox copies per message) and one fanned out at read time %.1f×",
		small["write"].size, w.size, growW, w.writesPerMsg, growR)
	return lab.Judge(w.writesPerMsg == float64(w.size) && r.writesPerMsg == 0 && growW > 2*growR,
		"Broadcasting on write costs work per member, at read time it does not: "+numbers+".", lab.Nuance,
		"The costs did not separate as expected on this machine: "+numbers+".")
}
