package service

import (
	"context"
	"encoding/json"
	"time"

	"github.com/redis/go-redis/v9"
)

// send stores f from user and delivers it: the sequence number and the
// append in one script, the inbox copies of a conversation fanned out on
// write, then the live messages. The sender hears "sent" only when all
// durable writes are done and the live messages are published; on an
// error it resends with the same ID, and in exactly-once mode the resend
// finds the stored message and completes its fan-out and publication. checkUser is false where the HTTP middleware counted the user's
// limit already.
func (s *Service) send(ctx context.Context, user, connKey string, f Frame, checkUser bool) (Frame, error) {
	if f.Conv == "" {
		return Frame{}, clientErr("bad_request", "a message needs a conv")
	}
	if !idRE.MatchString(f.ID) {
		return Frame{}, clientErr("bad_id", "message id %q: want 1 to 64 of A-Z a-z 0-9 _ -", trunc(f.ID))
	}
	if f.From != "" && f.From != user {
		return Frame{}, clientErr("forged_sender", "from %q is not the authenticated user", trunc(f.From))
	}
	if len(f.Body) > s.cfg.MaxBody {
		return Frame{}, clientErr("too_large", "body of %d bytes exceeds the limit of %d", len(f.Body), s.cfg.MaxBody)
	}
	if f.Body == "" && f.Media == "" {
		return Frame{}, clientErr("bad_request", "a message needs a body or media")
	}
	if f.Media != "" {
		if s.cfg.Media == nil {
			return Frame{}, clientErr("bad_media", "media %q: uploads are off", trunc(f.Media))
		}
		if err := checkMedia(s.cfg.Media, f.Media); err != nil {
			return Frame{}, err
		}
	}
	now := s.cfg.Now()
	for _, l := range []struct {
		on  bool
		lim interface {
			Allow(key string) bool
		}
		key string
	}{{checkUser, s.userLim, "u:" + user}, {connKey != "", s.connLim, connKey}} {
		if l.on && !l.lim.Allow(l.key) {
			s.metrics.limited.Add(1)
			e := clientErr("rate_limited", "too many messages from %q", user)
			e.RetryAfter = time.Second
			return Frame{}, e
		}
	}
	members, onWrite, err := s.conversation(ctx, f.Conv, user)
	if err != nil {
		return Frame{}, err
	}
	m := Frame{Type: "msg", Conv: f.Conv, From: user, ID: f.ID, Body: f.Body, Media: f.Media, TS: now.UnixMilli()}
	var dup bool
	if err := s.redis(ctx, func(ctx context.Context) (err error) {
		m, dup, err = s.st.appendMessage(ctx, m, s.cfg.Delivery == ExactlyOnce, s.cfg.DedupTTL)
		return err
	}); err != nil {
		return Frame{}, err
	}
	if dup {
		s.metrics.dups.Add(1)
	} else {
		s.metrics.in.Add(1)
	}
	if onWrite {
		if err := s.redis(ctx, func(ctx context.Context) error { return s.st.fanOut(ctx, m, members) }); err != nil {
			return Frame{}, err
		}
		s.metrics.fanWrite.Add(uint64(len(members)))
	} else {
		s.metrics.fanRead.Add(1)
	}
	// The live message must reach Redis too: a recipient that is
	// connected and has acknowledged everything has nothing else that
	// would make its gateway look at its queue. A failed publish is a
	// failed send, resent with the same ID (and, in exactly-once mode,
	// stored once). What a published message misses — a gateway whose
	// subscription is down — that gateway's sync sends when the
	// subscription comes back.
	if err := s.publish(ctx, m, members, onWrite); err != nil {
		s.cfg.Logger.Debug("live delivery failed", "conv", m.Conv, "seq", m.Seq, "err", err)
		return Frame{}, err
	}
	return Frame{Type: "sent", Conv: m.Conv, ID: m.ID, Seq: m.Seq, TS: m.TS, Dup: dup}, nil
}

// publish sends m live: to the gateways of the members that are present
// (fan-out on write), or once on the group's channel (at read time).
func (s *Service) publish(ctx context.Context, m Frame, members []string, onWrite bool) error {
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	if !onWrite {
		return s.redis(ctx, func(ctx context.Context) error {
			return s.st.rdb.Publish(ctx, s.st.groupChannel(m.Conv), b).Err()
		})
	}
	var gws map[string][]string
	if err := s.redis(ctx, func(ctx context.Context) (err error) {
		gws, err = s.st.gateways(ctx, members, s.cfg.Now())
		return err
	}); err != nil {
		return err
	}
	return s.redis(ctx, func(ctx context.Context) error {
		_, err := s.st.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for gw, users := range gws {
				payload, _ := json.Marshal(livePayload{To: users, Msg: b})
				p.Publish(ctx, s.st.gatewayChannel(gw), payload)
			}
			return nil
		})
		return err
	})
}

// dispatch hands a live message from Redis to the local sessions it is for.
func (s *Service) dispatch(own string, m *redis.Message) {
	var to []string
	var raw []byte
	if m.Channel == own {
		var p livePayload
		if json.Unmarshal([]byte(m.Payload), &p) != nil {
			return
		}
		to, raw = p.To, p.Msg
	} else {
		raw = []byte(m.Payload)
	}
	var f Frame
	if json.Unmarshal(raw, &f) != nil {
		return
	}
	if f.Type == "joined" {
		for _, x := range s.localSessions(to) {
			x.joined(f.Conv)
			x.reply(f)
		}
		return
	}
	if m.Channel != own {
		g, ok := s.groups.Get(f.Conv)
		if !ok {
			ctx, cancel := context.WithTimeout(context.Background(), s.cfg.RedisTimeout)
			var err error
			g, err = s.group(ctx, f.Conv)
			cancel()
			if err != nil {
				// Whose message it is is unknown: every local session
				// looks at its queue (a failed sync is retried).
				for _, x := range s.allSessions() {
					x.wantSync()
				}
				return
			}
			if g == nil {
				return
			}
		}
		to = g.members
	}
	for _, x := range s.localSessions(to) {
		x.live(outFrame{b: raw, conv: f.Conv, seq: f.Seq, ts: f.TS})
	}
}

// joined subscribes the session to a group it was just added to.
func (x *session) joined(c string) {
	x.mu.Lock()
	for _, g := range x.groups {
		if g == c {
			x.mu.Unlock()
			return
		}
	}
	x.groups = append(x.groups, c)
	x.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), x.s.cfg.RedisTimeout)
	defer cancel()
	x.s.subscribe(ctx, c)
	x.wantSync()
}

// ack records that user received conversation c up to seq.
func (s *Service) ack(ctx context.Context, user, c string, seq int64) error {
	if seq <= 0 {
		return clientErr("bad_seq", "ack seq %d: must be positive", seq)
	}
	if _, _, err := s.conversation(ctx, c, user); err != nil {
		return err
	}
	var last int64
	var moved bool
	err := s.redis(ctx, func(ctx context.Context) (err error) {
		if last, err = s.st.lastSeq(ctx, c); err != nil || seq > last {
			return err
		}
		moved, err = s.st.ack(ctx, user, c, seq)
		return err
	})
	if err != nil {
		return err
	}
	if seq > last {
		return clientErr("bad_seq", "ack seq %d in %q: the last message is %d", seq, c, last)
	}
	if !moved {
		s.metrics.replayed.Add(1)
	}
	for _, x := range s.localSessions([]string{user}) {
		x.noteAcked(map[string]int64{c: seq})
	}
	return nil
}

// notifyJoined tells the gateways of users that they joined group c.
func (s *Service) notifyJoined(ctx context.Context, c string, users []string) {
	b, _ := json.Marshal(Frame{Type: "joined", Conv: c})
	_ = s.redis(ctx, func(ctx context.Context) error {
		gws, err := s.st.gateways(ctx, users, s.cfg.Now())
		if err != nil {
			return err
		}
		for gw, us := range gws {
			payload, _ := json.Marshal(livePayload{To: us, Msg: b})
			if err := s.st.rdb.Publish(ctx, s.st.gatewayChannel(gw), payload).Err(); err != nil {
				return err
			}
		}
		return nil
	})
}

// trunc shortens a client-supplied value for an error message.
func trunc(v string) string {
	if len(v) > 80 {
		return v[:80] + "…"
	}
	return v
}
