package service

import (
	"context"
	"encoding/json"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Frame is one message of the chat protocol, a JSON object whose Type
// says which fields it carries. Over a WebSocket each frame is one text
// message; over SSE each is one event's data.
//
// Client to gateway:
//
//	{"type":"send","conv":"d:alice:bob","id":"m1","body":"hi"}   store and deliver (id: the client's message ID, 1 to 64 of A-Z a-z 0-9 _ -)
//	{"type":"ack","conv":"d:alice:bob","seq":7}                   everything up to 7 in the conversation arrived
//	{"type":"ping"}                                                answered by a pong
//
// Gateway to client:
//
//	{"type":"hello","user":"alice","gateway":"…","acked":{"d:alice:bob":6}}
//	{"type":"msg","conv":"d:alice:bob","seq":7,"from":"bob","id":"m1","body":"hi","ts":…}
//	{"type":"sent","conv":"d:alice:bob","id":"m1","seq":7}        stored; "dup":true when the ID was stored before
//	{"type":"error","id":"m1","code":"not_member","detail":"…"}   the frame was refused; the connection stays
//	{"type":"joined","conv":"g:team"}                             the user was added to a group
//	{"type":"pong"}
type Frame struct {
	Type string `json:"type"`
	Conv string `json:"conv,omitempty"`
	Seq  int64  `json:"seq,omitempty"`
	From string `json:"from,omitempty"`
	ID   string `json:"id,omitempty"`
	Body string `json:"body,omitempty"`
	// Media is a blob reference, "sha256:<hex>", from POST /api/v1/media.
	Media string `json:"media,omitempty"`
	// TS is when the gateway stored the message, in Unix milliseconds.
	TS      int64            `json:"ts,omitempty"`
	Dup     bool             `json:"dup,omitempty"`
	Code    string           `json:"code,omitempty"`
	Detail  string           `json:"detail,omitempty"`
	User    string           `json:"user,omitempty"`
	Gateway string           `json:"gateway,omitempty"`
	Acked   map[string]int64 `json:"acked,omitempty"`
	// RetryMS is how long to wait before resending, with an error.
	RetryMS int64 `json:"retry_ms,omitempty"`
}

// Close codes the gateway uses, beside the WebSocket library's own 1009
// (message too big).
const (
	statusUnsupportedData       = 1003 // a binary frame
	statusInvalidPayload        = 1007 // invalid UTF-8 or malformed JSON
	statusPolicyViolation       = 1008 // a forged sender or an unknown frame type
	statusServiceRestart        = 1012 // the gateway is draining: reconnect
	statusNormal                = 1000
	statusInternal              = 1011
	syncPage              int64 = 256
)

// sink is where a session's frames go: a WebSocket or an SSE stream. Only
// the session's writer calls it.
type sink interface {
	write(ctx context.Context, b []byte) error
	close(code int, reason string)
	// abort drops the connection without a closing handshake.
	abort()
}

// outFrame is a frame waiting to be written; live messages carry their
// conversation and sequence number so an acknowledged one is skipped.
type outFrame struct {
	b    []byte
	conv string
	seq  int64
	ts   int64
}

// session is one client connection. Its writer goroutine (run) is the
// only one that writes to the sink.
type session struct {
	s       *Service
	user    string
	connKey string
	sink    sink
	out     chan outFrame
	kick    chan struct{} // a sync is wanted
	done    chan struct{} // closed by close
	once    sync.Once

	mu           sync.Mutex // guards the fields below
	sent, acked  map[string]int64
	pendingSince time.Time // zero: nothing sent is unacknowledged
	code         int
	reason       string
	groups       []string
}

func (s *Service) newSession(user string, sk sink) *session {
	return &session{
		s: s, user: user, connKey: "c:" + user + ":" + itoa(s.nextConn.Add(1)), sink: sk,
		out: make(chan outFrame, s.cfg.OutboundQueue), kick: make(chan struct{}, 1), done: make(chan struct{}),
		sent: map[string]int64{}, acked: map[string]int64{},
	}
}

// close ends the session with a close code; the writer closes the sink.
func (x *session) close(code int, reason string) {
	x.once.Do(func() {
		x.mu.Lock()
		x.code, x.reason = code, reason
		x.mu.Unlock()
		close(x.done)
	})
}

// reply queues a frame that must reach the client (a reply to its frame),
// waiting for room.
func (x *session) reply(f Frame) {
	b, _ := json.Marshal(f)
	select {
	case x.out <- outFrame{b: b}:
	case <-x.done:
	}
}

// live queues a live message without waiting: when the queue is full it is
// left to redelivery, which a sync then performs.
func (x *session) live(o outFrame) {
	x.mu.Lock()
	skip := o.seq <= x.acked[o.conv]
	x.mu.Unlock()
	if skip {
		return
	}
	select {
	case x.out <- o:
	default:
		x.s.metrics.liveDropped.Add(1)
		x.wantSync()
	}
}

func (x *session) wantSync() {
	select {
	case x.kick <- struct{}{}:
	default:
	}
}

// run registers the session and writes its frames until it closes.
func (x *session) run(ctx context.Context) {
	s := x.s
	defer func() {
		s.unregister(x)
		x.mu.Lock()
		code, reason := x.code, x.reason
		x.mu.Unlock()
		if s.killed.Load() {
			x.sink.abort()
			return
		}
		x.sink.close(code, reason)
	}()
	if err := s.register(ctx, x); err != nil {
		s.cfg.Logger.Warn("register failed", "user", x.user, "err", err)
		x.close(statusServiceRestart, "storage unavailable; reconnect")
		return
	}
	hello := Frame{Type: "hello", User: x.user, Gateway: s.cfg.Gateway, Acked: map[string]int64{}}
	x.mu.Lock()
	for c, n := range x.acked {
		hello.Acked[c] = n
	}
	x.mu.Unlock()
	if b, _ := json.Marshal(hello); x.write(ctx, outFrame{b: b}) != nil {
		return
	}
	x.wantSync()
	for {
		select {
		case <-x.done:
			return
		case <-ctx.Done():
			x.close(statusServiceRestart, "gateway stopping")
			return
		case <-x.kick:
			if err := x.sync(ctx); err != nil {
				s.cfg.Logger.Debug("sync failed; retried on the next sweep", "user", x.user, "err", err)
				x.mu.Lock()
				if x.pendingSince.IsZero() {
					x.pendingSince = s.cfg.Now()
				}
				x.mu.Unlock()
			}
		case o := <-x.out:
			if x.write(ctx, o) != nil {
				return
			}
		}
	}
}

// write writes one frame, recording a message as sent.
func (x *session) write(ctx context.Context, o outFrame) error {
	if o.conv != "" {
		x.mu.Lock()
		if o.seq <= x.acked[o.conv] {
			x.mu.Unlock()
			return nil
		}
		first := o.seq > x.sent[o.conv]
		if first {
			x.sent[o.conv] = o.seq
		}
		if x.pendingSince.IsZero() {
			x.pendingSince = x.s.cfg.Now()
		}
		x.mu.Unlock()
		if first {
			x.s.metrics.observeDelivery(x.s.cfg.Now(), o.ts)
		} else {
			x.s.metrics.redelivered.Add(1)
		}
		x.s.metrics.out.Add(1)
	}
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := x.sink.write(wctx, o.b); err != nil {
		x.close(statusNormal, "write failed")
		return err
	}
	return nil
}

func (x *session) writeMsg(ctx context.Context, f Frame) error {
	f.Type = "msg"
	b, _ := json.Marshal(f)
	return x.write(ctx, outFrame{b: b, conv: f.Conv, seq: f.Seq, ts: f.TS})
}

// sync sends everything past the user's acknowledgements: the inbox
// (conversations fanned out on write) and the logs of large groups
// (fanned out at read time). Inbox entries that are acknowledged are
// trimmed.
func (x *session) sync(ctx context.Context) error {
	s := x.s
	var acked map[string]int64
	if err := s.redis(ctx, func(ctx context.Context) (err error) {
		acked, err = s.st.acked(ctx, x.user)
		return err
	}); err != nil {
		return err
	}
	x.noteAcked(acked)
	after, firstUnacked, last := "", "", ""
	for {
		var fs []Frame
		var ids []string
		if err := s.redis(ctx, func(ctx context.Context) (err error) {
			fs, ids, err = s.st.inbox(ctx, x.user, after, syncPage)
			return err
		}); err != nil {
			return err
		}
		for i, f := range fs {
			last = ids[i]
			if f.Seq <= acked[f.Conv] {
				continue
			}
			if firstUnacked == "" {
				firstUnacked = ids[i]
			}
			if err := x.writeMsg(ctx, f); err != nil {
				return err
			}
		}
		if int64(len(fs)) < syncPage {
			break
		}
		after = ids[len(ids)-1]
	}
	trim := firstUnacked
	if trim == "" && last != "" {
		trim = nextID(last)
	}
	if trim != "" {
		if err := s.redis(ctx, func(ctx context.Context) error { return s.st.trimInbox(ctx, x.user, trim) }); err != nil {
			return err
		}
	}
	x.mu.Lock()
	groups := x.groups
	x.mu.Unlock()
	for _, c := range groups {
		g, err := s.group(ctx, c)
		if err != nil {
			return err
		}
		if g == nil || len(g.members) <= s.cfg.FanOutLimit {
			continue
		}
		from := acked[c] + 1
		for {
			var fs []Frame
			if err := s.redis(ctx, func(ctx context.Context) (err error) {
				fs, err = s.st.readLog(ctx, c, from, 0, syncPage)
				return err
			}); err != nil {
				return err
			}
			for _, f := range fs {
				if err := x.writeMsg(ctx, f); err != nil {
					return err
				}
			}
			if int64(len(fs)) < syncPage {
				break
			}
			from = fs[len(fs)-1].Seq + 1
		}
	}
	return nil
}

// noteAcked records acknowledgements; when everything sent is
// acknowledged nothing is pending.
func (x *session) noteAcked(acked map[string]int64) {
	x.mu.Lock()
	defer x.mu.Unlock()
	for c, n := range acked {
		if n > x.acked[c] {
			x.acked[c] = n
		}
	}
	for c, n := range x.sent {
		if n > x.acked[c] {
			return
		}
	}
	x.pendingSince = time.Time{}
}

// dueForRedelivery reports whether something sent has waited longer than
// RedeliverAfter for its acknowledgement, restarting the wait if so.
func (x *session) dueForRedelivery(now time.Time) bool {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.pendingSince.IsZero() || now.Sub(x.pendingSince) < x.s.cfg.RedeliverAfter {
		return false
	}
	x.pendingSince = now
	return true
}

// handle serves one frame from the client and returns the close code and
// reason when the frame ends the connection (0 when it does not).
func (x *session) handle(ctx context.Context, f Frame) (int, string) {
	s := x.s
	switch f.Type {
	case "send":
		if f.From != "" && f.From != x.user {
			return statusPolicyViolation, "forged sender"
		}
		sent, err := s.send(ctx, x.user, x.connKey, f, true)
		if err != nil {
			x.reply(s.errorFrame(f, err))
			return 0, ""
		}
		x.reply(sent)
	case "ack":
		if err := s.ack(ctx, x.user, f.Conv, f.Seq); err != nil {
			x.reply(s.errorFrame(f, err))
		}
	case "ping":
		x.reply(Frame{Type: "pong"})
	default:
		return statusPolicyViolation, "unknown frame type"
	}
	return 0, ""
}

func (s *Service) errorFrame(f Frame, err error) Frame {
	e := s.asError(err)
	return Frame{Type: "error", ID: f.ID, Conv: f.Conv, Seq: f.Seq, Code: e.Code, Detail: e.Detail, RetryMS: e.RetryAfter.Milliseconds()}
}

// register adds x to the gateway: its groups' live channels, its
// acknowledgements and its presence.
func (s *Service) register(ctx context.Context, x *session) error {
	var groups []string
	var acked map[string]int64
	err := s.redis(ctx, func(ctx context.Context) (err error) {
		if groups, err = s.st.groups(ctx, x.user); err != nil {
			return err
		}
		acked, err = s.st.acked(ctx, x.user)
		return err
	})
	if err != nil {
		return err
	}
	x.noteAcked(acked)
	x.mu.Lock()
	x.groups = groups
	x.mu.Unlock()
	s.mu.Lock()
	if s.draining {
		s.mu.Unlock()
		return errDraining
	}
	if s.sessions[x.user] == nil {
		s.sessions[x.user] = map[*session]struct{}{}
	}
	s.sessions[x.user][x] = struct{}{}
	s.mu.Unlock()
	for _, c := range groups {
		s.subscribe(ctx, c)
	}
	s.metrics.connections.Inc()
	// Presence last: from here on, messages are published to this
	// gateway, and the sync that follows covers those sent before.
	return s.redis(ctx, func(ctx context.Context) error {
		return s.st.present(ctx, s.cfg.Gateway, []string{x.user}, s.cfg.PresenceTTL, s.cfg.Now())
	})
}

func (s *Service) unregister(x *session) {
	s.mu.Lock()
	ss := s.sessions[x.user]
	_, registered := ss[x]
	delete(ss, x)
	last := registered && len(ss) == 0
	if last {
		delete(s.sessions, x.user)
	}
	s.mu.Unlock()
	if !registered {
		return
	}
	s.metrics.connections.Dec()
	x.mu.Lock()
	groups := x.groups
	x.mu.Unlock()
	for _, c := range groups {
		s.unsubscribe(c)
	}
	if last && !s.killed.Load() {
		ctx, cancel := context.WithTimeout(context.Background(), s.cfg.RedisTimeout)
		defer cancel()
		_ = s.redis(ctx, func(ctx context.Context) error { return s.st.absent(ctx, s.cfg.Gateway, x.user) })
		// A new connection of the user may have registered here while
		// the presence was being removed: it is present again, and syncs
		// what was published to nobody meanwhile.
		if again := s.localSessions([]string{x.user}); len(again) > 0 {
			_ = s.redis(ctx, func(ctx context.Context) error {
				return s.st.present(ctx, s.cfg.Gateway, []string{x.user}, s.cfg.PresenceTTL, s.cfg.Now())
			})
			for _, y := range again {
				y.wantSync()
			}
		}
	}
}

// subscribe and unsubscribe count the local members of group c and keep
// the gateway subscribed to its live channel while there are some.
func (s *Service) subscribe(ctx context.Context, c string) {
	s.mu.Lock()
	s.subs[c]++
	first := s.subs[c] == 1
	s.mu.Unlock()
	if first {
		_ = s.pubsub.Subscribe(ctx, s.st.groupChannel(c))
	}
}

func (s *Service) unsubscribe(c string) {
	s.mu.Lock()
	s.subs[c]--
	last := s.subs[c] == 0
	if last {
		delete(s.subs, c)
	}
	s.mu.Unlock()
	if last {
		ctx, cancel := context.WithTimeout(context.Background(), s.cfg.RedisTimeout)
		defer cancel()
		_ = s.pubsub.Unsubscribe(ctx, s.st.groupChannel(c))
	}
}

// localSessions returns the sessions of the users on this gateway.
func (s *Service) localSessions(users []string) []*session {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*session
	for _, u := range users {
		for x := range s.sessions[u] {
			out = append(out, x)
		}
	}
	return out
}

func (s *Service) allSessions() []*session {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*session
	for _, ss := range s.sessions {
		for x := range ss {
			out = append(out, x)
		}
	}
	return out
}

// livePayload is what a gateway publishes to another's channel.
type livePayload struct {
	To  []string        `json:"to"`
	Msg json.RawMessage `json:"msg"`
}

// receive dispatches live messages from Redis to local sessions. When its
// subscription is re-established after an outage, every session syncs,
// as messages published meanwhile were lost.
func (s *Service) receive() {
	defer s.wg.Done()
	own := s.st.gatewayChannel(s.cfg.Gateway)
	for m := range s.pubsub.ChannelWithSubscriptions(redis.WithChannelSize(1024)) {
		switch m := m.(type) {
		case *redis.Subscription:
			if m.Kind == "subscribe" && m.Channel == own {
				for _, x := range s.allSessions() {
					x.wantSync()
				}
			}
		case *redis.Message:
			s.dispatch(own, m)
		}
	}
}

// sweep redelivers what stays unacknowledged and renews presence.
func (s *Service) sweep() {
	defer s.wg.Done()
	every := min(s.cfg.RedeliverAfter, s.cfg.PresenceTTL/3) / 2
	t := time.NewTicker(every)
	defer t.Stop()
	lastPresence := s.cfg.Now()
	renewed := lastPresence // the last successful renewal
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
		now := s.cfg.Now()
		all := s.allSessions()
		for _, x := range all {
			if x.dueForRedelivery(now) {
				x.wantSync()
			}
		}
		if now.Sub(lastPresence) >= s.cfg.PresenceTTL/3 {
			lastPresence = now
			users := map[string]bool{}
			var list []string
			for _, x := range all {
				if !users[x.user] {
					users[x.user] = true
					list = append(list, x.user)
				}
			}
			ctx, cancel := context.WithTimeout(context.Background(), s.cfg.RedisTimeout)
			err := s.redis(ctx, func(ctx context.Context) error {
				return s.st.present(ctx, s.cfg.Gateway, list, s.cfg.PresenceTTL, now)
			})
			cancel()
			if err == nil {
				// Renewals failed for a whole TTL (Redis was slow or
				// down): the presence may have lapsed, and messages
				// published meanwhile went to no gateway. Every
				// connection looks at its queue.
				if now.Sub(renewed) >= s.cfg.PresenceTTL {
					for _, x := range all {
						x.wantSync()
					}
				}
				renewed = now
			}
		}
	}
}

func itoa(n uint64) string {
	var b [20]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
		if n == 0 {
			return string(b[i:])
		}
	}
}
