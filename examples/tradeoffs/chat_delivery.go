package main

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/sysdesign-go/sysdesign/examples/chat/client"
	"github.com/sysdesign-go/sysdesign/examples/chat/service"
	"github.com/sysdesign-go/sysdesign/examples/internal/lab"
)

var chatDeliveryExperiment = lab.Experiment{
	Name:      "chat-delivery",
	Group:     "chat",
	Title:     "At-least-once versus exactly-once delivery when replies are lost (real gateway and Redis, wall clock)",
	Section:   chatSection,
	Guide:     "Message Delivery: At-least-once vs exactly-once",
	WallClock: true,
	Run:       runChatDelivery,
}

// chatDrops are the shares of "sent" replies the sender loses.
var chatDrops = []float64{0, 0.05, 0.2}

// chatResendAfter is how long the sender waits for a reply before it
// resends with the same message ID.
const chatResendAfter = 50 * time.Millisecond

type chatDeliveryCell struct {
	mode       string
	drop       float64
	messages   int
	resends    int
	stored     int64 // sequence numbers the conversation used
	duplicates int   // showings beyond the first of a message ID
	p50, p99   time.Duration
}

// measureChatDelivery sends n messages from alice to bob, one at a time,
// losing each "sent" reply with probability drop (the sender then resends
// the same ID after chatResendAfter), while bob shows what arrives in
// order and acknowledges it.
func measureChatDelivery(ctx context.Context, env *lab.Env, mode string, drop float64, n int) (*chatDeliveryCell, string, error) {
	c, skipped, err := startChat(ctx, service.Config{Delivery: mode, RedeliverAfter: 500 * time.Millisecond, UserLimit: chatNoLimit, ConnLimit: chatNoLimit})
	if skipped != "" || err != nil {
		return nil, skipped, err
	}
	defer c.close()
	alice, err := c.dial(ctx, "alice")
	if err != nil {
		return nil, "", err
	}
	defer alice.CloseNow()
	bob, err := c.dial(ctx, "bob")
	if err != nil {
		return nil, "", err
	}
	defer bob.CloseNow()
	const conv = "d:alice:bob"
	rng := env.Rand(uint64(drop * 1000))
	cell := &chatDeliveryCell{mode: mode, drop: drop, messages: n}

	var mu sync.Mutex
	shown := map[string]int{}
	var last int64
	bobDone := make(chan error, 1)
	bctx, stopBob := context.WithCancel(ctx)
	defer stopBob()
	go func() {
		var order client.Order
		for {
			f, err := bob.Read(bctx)
			if err != nil {
				bobDone <- err
				return
			}
			if f.Type != "msg" {
				continue
			}
			show, ack, _ := order.Accept(f)
			mu.Lock()
			for _, g := range show {
				shown[g.ID]++
				last = g.Seq
			}
			mu.Unlock()
			if ack > 0 {
				_ = bob.Ack(bctx, conv, ack)
			}
		}
	}()
	// Alice's frames: replies to her sends, and her own messages, which
	// she acknowledges.
	replies := make(chan service.Frame, 16)
	go func() {
		var order client.Order
		for {
			f, err := alice.Read(bctx)
			if err != nil {
				close(replies)
				return
			}
			switch f.Type {
			case "msg":
				if _, ack, _ := order.Accept(f); ack > 0 {
					_ = alice.Ack(bctx, conv, ack)
				}
			case "sent", "error":
				replies <- f
			}
		}
	}()
	var lat []time.Duration
	for i := range n {
		id := fmt.Sprintf("m%d", i)
		start := time.Now()
		for attempt := 0; ; attempt++ {
			if attempt > 0 {
				cell.resends++
			}
			if err := alice.Send(ctx, conv, id, "hello"); err != nil {
				return nil, "", err
			}
			var reply service.Frame
			select {
			case reply = <-replies:
			case <-time.After(10 * time.Second):
				return nil, "", fmt.Errorf("lab: no reply to %s in 10 s", id)
			}
			if reply.Type == "error" {
				return nil, "", fmt.Errorf("lab: %s refused: %s", id, reply.Detail)
			}
			if rng.Float64() < drop {
				time.Sleep(chatResendAfter) // the reply was lost: wait, then resend
				continue
			}
			cell.stored = max(cell.stored, reply.Seq)
			break
		}
		lat = append(lat, time.Since(start))
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		done := last >= cell.stored
		mu.Unlock()
		if done || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	stopBob()
	mu.Lock()
	for _, k := range shown {
		cell.duplicates += k - 1
	}
	if len(shown) != n {
		mu.Unlock()
		return nil, "", fmt.Errorf("lab: bob was shown %d of %d messages", len(shown), n)
	}
	mu.Unlock()
	slices.Sort(lat)
	cell.p50, cell.p99 = lat[len(lat)/2], lat[min(len(lat)-1, len(lat)*99/100)]
	return cell, "", nil
}

func runChatDelivery(ctx context.Context, env *lab.Env) (*lab.Result, error) {
	n := env.Scale(400, 60)
	var cells []*chatDeliveryCell
	for _, mode := range []string{service.AtLeastOnce, service.ExactlyOnce} {
		for _, drop := range chatDrops {
			c, skipped, err := measureChatDelivery(ctx, env, mode, drop, n)
			if err != nil {
				return nil, err
			}
			if skipped != "" {
				return &lab.Result{Reason: "Not measured: " + skipped + ".", Notes: []string{"Skipped: " + skipped + "."}}, nil
			}
			cells = append(cells, c)
		}
	}
	t := lab.NewTable(fmt.Sprintf("%d messages alice → bob through one gateway and the real Redis; a lost reply is resent with the same ID after %v", n, chatResendAfter),
		"mode", "replies lost", "resends", "messages stored", "duplicates shown", "send p50", "send p99")
	for _, c := range cells {
		t.AddRow(c.mode, fmt.Sprintf("%.0f%%", 100*c.drop), c.resends, c.stored, c.duplicates, c.p50, c.p99)
	}
	verdict, reason := chatDeliveryVerdict(cells)
	return &lab.Result{Verdict: verdict, Reason: reason, Tables: []*lab.Table{t}, Notes: []string{
		"In at-least-once mode every resend after a lost reply is stored under a new sequence number and shown again; in exactly-once mode the append script finds the client's message ID (one SET with a TTL per message, in the same script and slot) and answers the stored sequence number, so each message is stored and shown once.",
		"Both modes pay the same resend delay when a reply is lost (the p99 column): exactly-once removes the duplicate, not the wait. Its own cost is one key per message for the de-duplication window (DedupTTL).",
		"Redelivery of unacknowledged messages (gateway → client) can show a message twice too; the client drops a sequence number it has shown, which is why a duplicate in at-least-once mode is a new sequence number, not a redelivery.",
	}}, ctx.Err()
}

// chatDeliveryVerdict judges "at-least-once vs exactly-once": at-least-once
// shows duplicates when replies are lost and exactly-once shows none.
func chatDeliveryVerdict(cells []*chatDeliveryCell) (lab.Verdict, string) {
	var alo, eo int
	var drop float64
	for _, c := range cells {
		if c.drop == 0 {
			continue
		}
		drop = max(drop, c.drop)
		if c.mode == service.AtLeastOnce {
			alo += c.duplicates
		} else {
			eo += c.duplicates
		}
	}
	numbers := fmt.Sprintf("with up to %.0f%% of replies lost, at-least-once showed %d duplicates and exactly-once %d", 100*drop, alo, eo)
	return lab.Judge(alo > 0 && eo == 0, "The choice matters as the guide says: "+numbers+".", lab.Refutes, "The modes did not differ as expected: "+numbers+".")
}
