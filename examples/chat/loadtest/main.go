// Command loadtest drives the chat gateways with thousands of WebSocket
// clients on loopback for a bounded time, one-to-one and group traffic,
// breaks them on purpose and checks the delivery guarantees at the end:
//
//   - it kills one gateway a third of the way through (its clients
//     reconnect through the balancer to the others) and cuts Redis for
//     -cut (its own redis-server on a free port, behind a TCP proxy that
//     drops every connection) two thirds of the way;
//   - every message the gateway acknowledged ("sent") must be shown to
//     every member of its conversation (0 lost); every member must see
//     the same message at each sequence number (order); a message ID shown
//     twice is a duplicate, which exactly-once mode must never show and
//     at-least-once mode counts;
//   - it reports messages/s, end-to-end latency p50/p99/p99.9 (from the
//     first send to the first showing at a recipient), reconnects and
//     resends.
//
// With -idle N it instead measures the memory of N idle connections on
// one gateway, run as a child process: Go heap and RSS after GC, per
// connection.
//
// Guide: "Real-World System Designs → 2. Chat Application";
// "Performance Considerations → Throughput Optimization → Load Testing";
// "Fault Tolerance" (the killed gateway and the cut Redis).
//
// Its flags choose the run: -clients, -rate and -duration (2,000 clients
// sending a message every 4 s for 20 s by default), -delivery at-least-once with -drop 0.05 to see
// duplicates, -idle 10000 for memory per idle connection; the commands
// are in the README beside the package. The exit status is 1 if a
// guarantee was broken.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sysdesign-go/sysdesign/examples/chat/client"
	"github.com/sysdesign-go/sysdesign/examples/chat/service"
	"github.com/sysdesign-go/sysdesign/examples/internal/redisproc"
	"github.com/sysdesign-go/sysdesign/internal/tcpproxy"
	"github.com/sysdesign-go/sysdesign/ratelimit"
	"github.com/sysdesign-go/sysdesign/resilience"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "-serve-gateway" {
		if err := serveGateway(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "loadtest gateway:", err)
			os.Exit(1)
		}
		return
	}
	res, err := run(context.Background(), os.Args[1:], os.Stdout)
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "loadtest:", err)
		}
		os.Exit(2)
	}
	if res != nil && !res.ok() {
		os.Exit(1)
	}
}

type config struct {
	clients, gateways, groupSize int
	groupShare, rate, drop       float64
	duration, cut                time.Duration
	kill                         bool
	delivery                     string
	idle                         int
	seed                         uint64
}

// Result is what a run measured.
type Result struct {
	Acked, Shown, Lost, Duplicates, OrderViolations int
	Resends, Reconnects                             int64
	Elapsed                                         time.Duration
	P50, P99, P999                                  time.Duration
	Delivery                                        string
}

func (r *Result) ok() bool {
	return r.Lost == 0 && r.OrderViolations == 0 && (r.Delivery == service.AtLeastOnce || r.Duplicates == 0)
}

func run(ctx context.Context, args []string, out io.Writer) (*Result, error) {
	fs := flag.NewFlagSet("loadtest", flag.ContinueOnError)
	fs.SetOutput(out)
	var c config
	fs.IntVar(&c.clients, "clients", 2000, "WebSocket clients (users), one connection each")
	fs.IntVar(&c.gateways, "gateways", 3, "gateways behind the balancer")
	fs.IntVar(&c.groupSize, "group-size", 8, "members of each group")
	fs.Float64Var(&c.groupShare, "group-share", 0.3, "share of messages sent to a group rather than one-to-one")
	fs.Float64Var(&c.rate, "rate", 0.25, "messages per second per client")
	fs.Float64Var(&c.drop, "drop", 0, "share of the gateway's \"sent\" replies the clients drop, as if lost, so they resend")
	fs.DurationVar(&c.duration, "duration", 20*time.Second, "sending time (then the clients drain)")
	fs.DurationVar(&c.cut, "cut", 3*time.Second, "how long Redis is cut two thirds through; 0: no cut")
	fs.BoolVar(&c.kill, "kill", true, "kill one gateway a third through")
	fs.StringVar(&c.delivery, "delivery", service.ExactlyOnce, "exactly-once or at-least-once")
	fs.IntVar(&c.idle, "idle", 0, "measure memory per idle connection with this many connections instead")
	fs.Uint64Var(&c.seed, "seed", 1, "random seed of the traffic")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if c.clients < 2 || c.gateways < 1 || c.groupSize < 2 || c.groupSize > c.clients || c.rate <= 0 || c.drop < 0 || c.drop >= 1 || c.duration <= 0 {
		return nil, fmt.Errorf("bad flags: %d clients, %d gateways, group size %d, rate %g, drop %g, duration %v", c.clients, c.gateways, c.groupSize, c.rate, c.drop, c.duration)
	}
	if c.kill && c.gateways < 2 {
		return nil, fmt.Errorf("-kill needs at least 2 gateways, have %d", c.gateways)
	}
	if c.idle > 0 {
		return nil, idle(ctx, c.idle, out)
	}
	return load(ctx, c, out)
}

// ledger is what every client saw.
type ledger struct {
	mu         sync.Mutex
	acked      map[string]ackedMsg         // message ID → its conversation and first send
	bySeq      map[string]map[int64]string // conversation → seq → message ID
	shown      map[string]map[string]int   // user → message ID → times shown
	members    map[string][]string         // conversation → members
	latencies  []time.Duration
	violations int
}

type ackedMsg struct {
	conv string
	seqs []int64
}

func (l *ledger) ack(id, conv string, seq int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	a := l.acked[id]
	a.conv = conv
	if !slices.Contains(a.seqs, seq) {
		a.seqs = append(a.seqs, seq)
	}
	l.acked[id] = a
}

func (l *ledger) show(user string, f service.Frame, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	m := l.bySeq[f.Conv]
	if m == nil {
		m = map[int64]string{}
		l.bySeq[f.Conv] = m
	}
	if prev, ok := m[f.Seq]; ok && prev != f.ID {
		l.violations++
	}
	m[f.Seq] = f.ID
	s := l.shown[user]
	if s == nil {
		s = map[string]int{}
		l.shown[user] = s
	}
	s[f.ID]++
	if s[f.ID] == 1 && f.From != user {
		if ns, err := strconv.ParseInt(strings.TrimPrefix(f.Body, "t="), 10, 64); err == nil {
			l.latencies = append(l.latencies, now.Sub(time.Unix(0, ns)))
		}
	}
}

// missing counts the members that have not been shown an acknowledged
// message yet.
func (l *ledger) missing() (lost, shown, dups int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for id, a := range l.acked {
		for _, u := range l.members[a.conv] {
			switch n := l.shown[u][id]; {
			case n == 0:
				lost++
			default:
				shown++
				dups += n - 1
			}
		}
	}
	return lost, shown, dups
}

// user is one load-test client.
type user struct {
	id    string
	token string
	convs []string
	rng   *rand.Rand

	// order is the client's local store of what it has shown: it
	// outlives connections, as an app's database does, so a message
	// redelivered after a reconnect (its ack was lost) shows once.
	order client.Order

	mu          sync.Mutex
	outstanding map[string]*pending
	n           int
}

type pending struct {
	conv, body string
	tries      int           // resends so far
	wait       time.Duration // the last wait before a resend
	next       time.Time     // when to resend if still unacknowledged
}

// resendBackoff spaces a client's resends of one message: a second, then
// doubling to 8 s, each randomised between half and all of it (equal
// jitter), so clients that failed together (a killed gateway, a Redis
// outage) do not resend together.
var resendBackoff = resilience.Backoff{Base: time.Second, Max: 8 * time.Second, Jitter: resilience.JitterEqual}

// schedule sets when p is resent next, now being a send or resend.
func (u *user) schedule(p *pending, now time.Time) {
	p.tries++
	p.wait = resendBackoff.Delay(p.tries, p.wait, u.rng.Float64())
	p.next = now.Add(p.wait)
}

type env struct {
	cfg        config
	url        string
	led        *ledger
	resends    atomic.Int64
	reconnects atomic.Int64
	sending    atomic.Bool
}

func load(ctx context.Context, c config, out io.Writer) (*Result, error) {
	raddr, stopRedis, err := redisproc.Start(ctx)
	if err != nil {
		return nil, err
	}
	defer stopRedis()
	proxy, err := tcpproxy.New(raddr)
	if err != nil {
		return nil, err
	}
	defer proxy.Close()
	// The gateways' client as the chat program configures it (go-redis
	// retries a command on a broken connection, so the pool's connections
	// that died in the cut are replaced, not each failed once), with a
	// pool for three gateways.
	rdb := redis.NewClient(&redis.Options{Addr: raddrOr(raddr, proxy.Addr()), ContextTimeoutEnabled: true,
		DialTimeout: 200 * time.Millisecond, PoolSize: 128, MinIdleConns: 16})
	defer rdb.Close()
	tokens, err := service.NewTokens([]byte("loadtest-key-0123456789abcdef0123"))
	if err != nil {
		return nil, err
	}
	cl, err := service.Start(ctx, service.ClusterConfig{Gateways: c.gateways, Service: service.Config{
		Redis: rdb, Authenticate: tokens.User, Delivery: c.delivery, RedeliverAfter: time.Second,
		PresenceTTL: 6 * time.Second, RedisTimeout: 2 * time.Second, BreakerOpen: 500 * time.Millisecond,
		UserLimit: rateLimit(c.rate), ConnLimit: rateLimit(c.rate),
		Logger: logger(),
	}})
	if err != nil {
		return nil, err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		_ = cl.Close(sctx)
	}()
	e := &env{cfg: c, url: cl.URL(), led: &ledger{acked: map[string]ackedMsg{}, bySeq: map[string]map[int64]string{},
		shown: map[string]map[string]int{}, members: map[string][]string{}}}
	users := make([]*user, c.clients)
	for i := range users {
		u := &user{id: fmt.Sprintf("u%d", i), rng: rand.New(rand.NewPCG(c.seed, uint64(i))), outstanding: map[string]*pending{}}
		if u.token, err = tokens.Issue(u.id, time.Hour); err != nil {
			return nil, err
		}
		users[i] = u
	}
	// One-to-one: pairs (2k, 2k+1). Groups: consecutive blocks.
	for i := 0; i+1 < len(users); i += 2 {
		a, b := users[i], users[i+1]
		conv := service.DirectConversation(a.id, b.id)
		a.convs, b.convs = append(a.convs, conv), append(b.convs, conv)
		e.led.members[conv] = []string{a.id, b.id}
	}
	for g := 0; (g+1)*c.groupSize <= len(users); g++ {
		block := users[g*c.groupSize : (g+1)*c.groupSize]
		var ids []string
		for _, u := range block {
			ids = append(ids, u.id)
		}
		if err := createGroup(ctx, e.url, block[0].token, fmt.Sprintf("grp%d", g), ids); err != nil {
			return nil, err
		}
		conv := fmt.Sprintf("g:grp%d", g)
		e.led.members[conv] = ids
		for _, u := range block {
			u.convs = append(u.convs, conv)
		}
	}
	fmt.Fprintf(out, "chat load test: %d clients over %d gateways, %s, %.1f msg/s each for %v, %.0f%% to groups of %d, drop %.0f%% of replies\n",
		c.clients, c.gateways, c.delivery, c.rate, c.duration, 100*c.groupShare, c.groupSize, 100*c.drop)

	runCtx, stopClients := context.WithCancel(ctx)
	var wg sync.WaitGroup
	e.sending.Store(true)
	connected := make(chan struct{}, len(users))
	// Clients connect in batches, as a real fleet ramps up, not in one
	// burst that only measures the accept queue.
	for i, u := range users {
		wg.Add(1)
		go func() { defer wg.Done(); e.client(runCtx, u, connected) }()
		if (i+1)%100 == 0 || i == len(users)-1 {
			for range i%100 + 1 {
				select {
				case <-connected:
				case <-time.After(60 * time.Second):
					stopClients()
					wg.Wait()
					return nil, errors.New("clients not connected in 60 s")
				}
			}
		}
	}
	start := time.Now()
	var faults sync.WaitGroup
	faults.Add(1)
	go func() {
		defer faults.Done()
		if c.kill {
			time.Sleep(c.duration / 3)
			fmt.Fprintf(out, "%6.1fs  kill gateway 1\n", time.Since(start).Seconds())
			_ = cl.Kill(1)
		}
		if c.cut > 0 {
			time.Sleep(time.Until(start.Add(2 * c.duration / 3)))
			fmt.Fprintf(out, "%6.1fs  cut Redis for %v\n", time.Since(start).Seconds(), c.cut)
			proxy.Cut()
			time.Sleep(c.cut)
			proxy.Restore()
			fmt.Fprintf(out, "%6.1fs  Redis back\n", time.Since(start).Seconds())
		}
	}()
	time.Sleep(c.duration)
	e.sending.Store(false)
	elapsed := time.Since(start)
	faults.Wait()
	// Drain: resends go on until every message is acknowledged, and
	// clients keep showing until nothing is missing.
	deadline := time.Now().Add(30*time.Second + c.cut)
	for time.Now().Before(deadline) {
		lost, _, _ := e.led.missing()
		if lost == 0 && e.outstanding(users) == 0 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	drained := time.Since(start)
	stopClients()
	wg.Wait()
	if os.Getenv("LOADTEST_DEBUG") != "" {
		fmt.Fprintf(os.Stderr, "drained at %v, stopped at %v\n", drained, time.Since(start))
	}

	lost, shown, dups := e.led.missing()
	if lost > 0 || e.outstanding(users) > 0 {
		e.explain(ctx, out, users, rdb)
	}
	r := &Result{Acked: len(e.led.acked), Shown: shown, Lost: lost, Duplicates: dups, OrderViolations: e.led.violations,
		Resends: e.resends.Load(), Reconnects: e.reconnects.Load(), Elapsed: elapsed, Delivery: c.delivery}
	r.Lost += e.outstanding(users) // sent but never acknowledged counts too
	lat := e.led.latencies
	slices.Sort(lat)
	r.P50, r.P99, r.P999 = quantile(lat, .5), quantile(lat, .99), quantile(lat, .999)
	fmt.Fprintf(out, "messages acknowledged  %d (%.0f/s)\n", r.Acked, float64(r.Acked)/elapsed.Seconds())
	fmt.Fprintf(out, "showings               %d\n", r.Shown)
	fmt.Fprintf(out, "latency p50/p99/p99.9  %v / %v / %v\n", r.P50.Round(100*time.Microsecond), r.P99.Round(100*time.Microsecond), r.P999.Round(100*time.Microsecond))
	fmt.Fprintf(out, "resends, reconnects    %d, %d\n", r.Resends, r.Reconnects)
	fmt.Fprintf(out, "lost                   %d\n", r.Lost)
	fmt.Fprintf(out, "duplicates shown       %d\n", r.Duplicates)
	fmt.Fprintf(out, "order violations       %d\n", r.OrderViolations)
	verdict := "PASS"
	if !r.ok() {
		verdict = "FAIL"
	}
	fmt.Fprintf(out, "%s\n", verdict)
	return r, nil
}

// rateLimit is a limit the test's clients stay under, resends included.
func rateLimit(rate float64) ratelimit.Limit {
	n := int(rate*10) + 10
	return ratelimit.Limit{Events: n, Per: time.Second, Burst: 2 * n}
}

func quantile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[min(len(sorted)-1, int(q*float64(len(sorted))))]
}

// explain prints, for a failed run, the first few acknowledged messages a
// member was not shown (with where that member's view of the conversation
// stopped) and messages never acknowledged, so a failure says where the
// chain broke.
func (e *env) explain(ctx context.Context, out io.Writer, users []*user, rdb redis.UniversalClient) {
	byID := map[string]*user{}
	for _, u := range users {
		byID[u.id] = u
	}
	l := e.led
	l.mu.Lock()
	n := 0
	for id, a := range l.acked {
		for _, m := range l.members[a.conv] {
			if l.shown[m][id] == 0 && n < 20 {
				n++
				last := byID[m].order.Shown(a.conv) // the clients have stopped
				// What the gateways' storage says of that member (the
				// chat program's default key prefix).
				acked, _ := rdb.HGet(ctx, "chat:{u:"+m+"}:acked", a.conv).Result()
				inbox, _ := rdb.XLen(ctx, "chat:{u:"+m+"}:inbox").Result()
				fmt.Fprintf(out, "not shown: %s in %s (seq %v) to %s, whose %s stops at seq %d (stored: acknowledged %q, %d inbox entries)\n",
					id, a.conv, a.seqs, m, a.conv, last, acked, inbox)
			}
		}
	}
	l.mu.Unlock()
	for _, u := range users {
		u.mu.Lock()
		for id, p := range u.outstanding {
			if n < 40 {
				n++
				fmt.Fprintf(out, "never acknowledged: %s in %s from %s\n", id, p.conv, u.id)
			}
		}
		u.mu.Unlock()
	}
}

func (e *env) outstanding(users []*user) int {
	n := 0
	for _, u := range users {
		u.mu.Lock()
		n += len(u.outstanding)
		u.mu.Unlock()
	}
	return n
}

func createGroup(ctx context.Context, base, token, id string, members []string) error {
	body := fmt.Sprintf(`{"id":%q,"members":["%s"]}`, id, strings.Join(members, `","`))
	req, err := http.NewRequestWithContext(ctx, "POST", base+"/api/v1/groups", strings.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		b, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("create group %s: %d %s", id, resp.StatusCode, b)
	}
	return nil
}

// client runs one user until ctx ends: it connects (and reconnects
// through the balancer), sends at the configured rate while the test
// sends, resends what is not acknowledged, shows in order and acks.
//
// A client waits before each reconnection, longer after each attempt
// that did not get as far as the gateway's hello (a refused dial, or a
// gateway that could not register the connection), so a fleet whose
// gateway or storage failed does not return all at once.
func (e *env) client(ctx context.Context, u *user, connected chan<- struct{}) {
	first := true
	tries := 0 // reconnection attempts since the last registered session
	var wait time.Duration
	for ctx.Err() == nil {
		if tries > 0 {
			wait = reconnectBackoff.Delay(tries, wait, u.rng.Float64())
			select {
			case <-ctx.Done():
				return
			case <-time.After(wait):
			}
		}
		tries++
		conn, err := client.Dial(ctx, e.url, u.token)
		if err != nil {
			continue
		}
		if first {
			connected <- struct{}{}
			first = false
		} else {
			e.reconnects.Add(1)
		}
		if e.session(ctx, u, conn) {
			tries, wait = 1, 0
		}
		_ = conn.CloseNow()
	}
}

// reconnectBackoff spaces a client's reconnections: up to 100 ms after a
// working connection broke, doubling to 5 s while attempts keep failing,
// each a random share of that (full jitter).
var reconnectBackoff = resilience.Backoff{Base: 100 * time.Millisecond, Max: 5 * time.Second, Jitter: resilience.JitterFull}

// session runs one connection until it breaks or ctx ends, and reports
// whether the gateway registered it (sent its hello).
func (e *env) session(ctx context.Context, u *user, conn *client.Conn) (registered bool) {
	frames := make(chan service.Frame, 64)
	readErr := make(chan error, 1)
	done := make(chan struct{})
	defer close(done)
	go func() {
		for {
			f, err := conn.Read(ctx)
			if err != nil {
				readErr <- err
				return
			}
			select {
			case frames <- f:
			case <-done:
				return
			}
		}
	}()
	order := &u.order
	tick := time.NewTicker(time.Duration(float64(time.Second) / e.cfg.rate))
	defer tick.Stop()
	resend := time.NewTicker(250 * time.Millisecond)
	defer resend.Stop()
	wctx := func() (context.Context, context.CancelFunc) { return context.WithTimeout(ctx, 5*time.Second) }
	write := func(f service.Frame) bool {
		c, cancel := wctx()
		defer cancel()
		return conn.Write(c, f) == nil
	}
	for {
		select {
		case <-ctx.Done():
			return
		case err := <-readErr:
			if os.Getenv("LOADTEST_DEBUG") != "" {
				fmt.Fprintln(os.Stderr, u.id, "read:", err)
			}
			return
		case f := <-frames:
			switch f.Type {
			case "hello":
				for c, s := range f.Acked {
					order.Start(c, s)
				}
				registered = true
				// Resend everything not acknowledged, with the same IDs.
				for id, p := range u.due(time.Time{}) {
					e.resends.Add(1)
					if !write(service.Frame{Type: "send", Conv: p.conv, ID: id, Body: p.body}) {
						return
					}
				}
			case "sent":
				if e.cfg.drop > 0 && u.rng.Float64() < e.cfg.drop {
					continue // the reply is "lost": the client resends
				}
				e.led.ack(f.ID, f.Conv, f.Seq)
				u.mu.Lock()
				delete(u.outstanding, f.ID)
				u.mu.Unlock()
			case "error":
				if os.Getenv("LOADTEST_DEBUG") != "" {
					fmt.Fprintln(os.Stderr, u.id, "error:", f.ID, f.Code, f.Detail)
				}
				u.mu.Lock()
				if p := u.outstanding[f.ID]; p != nil {
					switch f.Code {
					case "unavailable", "rate_limited":
						// Not before the gateway's retry delay.
						if at := time.Now().Add(time.Duration(f.RetryMS) * time.Millisecond); at.After(p.next) {
							p.next = at
						}
					default:
						delete(u.outstanding, f.ID) // refused for good: not acknowledged, not lost
					}
				}
				u.mu.Unlock()
			case "msg":
				show, ack, dup := order.Accept(f)
				if dup {
					// Shown before: the gateway lost the ack; repeat it.
					ack = order.Shown(f.Conv)
				}
				now := time.Now()
				for _, g := range show {
					e.led.show(u.id, g, now)
				}
				if ack > 0 && !write(service.Frame{Type: "ack", Conv: f.Conv, Seq: ack}) {
					return
				}
			}
		case <-tick.C:
			if !registered || !e.sending.Load() {
				continue
			}
			conv := u.convs[0]
			if len(u.convs) > 1 && u.rng.Float64() < e.cfg.groupShare {
				conv = u.convs[1]
			}
			u.mu.Lock()
			u.n++
			id := fmt.Sprintf("%s-%d", u.id, u.n)
			now := time.Now()
			p := &pending{conv: conv, body: "t=" + strconv.FormatInt(now.UnixNano(), 10)}
			u.schedule(p, now)
			u.outstanding[id] = p
			u.mu.Unlock()
			if !write(service.Frame{Type: "send", Conv: conv, ID: id, Body: p.body}) {
				return
			}
		case <-resend.C:
			for id, p := range u.due(time.Now()) {
				e.resends.Add(1)
				if !write(service.Frame{Type: "send", Conv: p.conv, ID: id, Body: p.body}) {
					return
				}
			}
		}
	}
}

// due returns the messages to resend at now (all of them when now is
// zero, after a reconnect) and schedules their next resend.
func (u *user) due(now time.Time) map[string]pending {
	u.mu.Lock()
	defer u.mu.Unlock()
	var out map[string]pending
	at := now
	if at.IsZero() {
		at = time.Now()
	}
	for id, p := range u.outstanding {
		if now.IsZero() || !now.Before(p.next) {
			u.schedule(p, at)
			if out == nil {
				out = map[string]pending{}
			}
			out[id] = *p
		}
	}
	return out
}

// idle measures memory per idle connection: a gateway in a child process
// (this program with -serve-gateway), its heap and RSS after GC before
// and after n connections.
func idle(ctx context.Context, n int, out io.Writer) error {
	raddr, stopRedis, err := redisproc.Start(ctx)
	if err != nil {
		return err
	}
	defer stopRedis()
	self, err := os.Executable()
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, self, "-serve-gateway", raddr)
	redisproc.DieWithParent(cmd)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return err
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	sc := bufio.NewScanner(stdout)
	if !sc.Scan() {
		return errors.New("gateway child printed no address")
	}
	base := sc.Text()
	before, err := memory(ctx, base)
	if err != nil {
		return err
	}
	tokens, err := service.NewTokens([]byte("loadtest-key-0123456789abcdef0123"))
	if err != nil {
		return err
	}
	conns := make([]*client.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			_ = c.CloseNow()
		}
	}()
	for i := range n {
		tok, _ := tokens.Issue(fmt.Sprintf("idle%d", i), time.Hour)
		dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		c, err := client.Dial(dctx, base, tok)
		if err == nil {
			_, err = c.Read(dctx) // hello: the session is registered
		}
		cancel()
		if err != nil {
			return fmt.Errorf("connection %d: %w", i, err)
		}
		conns = append(conns, c)
	}
	after, err := memory(ctx, base)
	if err != nil {
		return err
	}
	perHeap := (after.heap - before.heap) / float64(n)
	perRSS := (after.rss - before.rss) / float64(n)
	fmt.Fprintf(out, "idle connections       %d (goroutines %0.f → %0.f)\n", n, before.goroutines, after.goroutines)
	fmt.Fprintf(out, "Go heap in use         %.1f MiB → %.1f MiB: %.1f KiB per connection\n", before.heap/(1<<20), after.heap/(1<<20), perHeap/1024)
	fmt.Fprintf(out, "RSS                    %.1f MiB → %.1f MiB: %.1f KiB per connection\n", before.rss/(1<<20), after.rss/(1<<20), perRSS/1024)
	return nil
}

type mem struct{ heap, rss, goroutines float64 }

// memory asks the child gateway to collect garbage and reads its
// Prometheus metrics.
func memory(ctx context.Context, base string) (mem, error) {
	req, _ := http.NewRequestWithContext(ctx, "POST", base+"/gc", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return mem{}, err
	}
	_ = resp.Body.Close()
	req, _ = http.NewRequestWithContext(ctx, "GET", base+"/metrics", nil)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		return mem{}, err
	}
	defer resp.Body.Close()
	var m mem
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		name, v, _ := strings.Cut(sc.Text(), " ")
		f, _ := strconv.ParseFloat(v, 64)
		switch name {
		case "go_memstats_heap_inuse_bytes":
			m.heap = f
		case "process_resident_memory_bytes":
			m.rss = f
		case "go_goroutines":
			m.goroutines = f
		}
	}
	return m, sc.Err()
}

// serveGateway is the child process of idle: one gateway on a free
// loopback port, with POST /gc to collect garbage before a measurement.
// It prints its URL and serves until killed.
func serveGateway(args []string) error {
	if len(args) != 1 {
		return fmt.Errorf("want the Redis address, have %q", args)
	}
	rdb := redis.NewClient(&redis.Options{Addr: args[0], ContextTimeoutEnabled: true})
	defer rdb.Close()
	tokens, err := service.NewTokens([]byte("loadtest-key-0123456789abcdef0123"))
	if err != nil {
		return err
	}
	s, err := service.New(context.Background(), service.Config{Redis: rdb, Authenticate: tokens.User,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.Handle("/", s.Handler())
	mux.HandleFunc("POST /gc", func(w http.ResponseWriter, _ *http.Request) {
		runtime.GC()
		debug.FreeOSMemory()
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	fmt.Println("http://" + ln.Addr().String())
	return http.Serve(ln, mux)
}

func logger() *slog.Logger {
	if os.Getenv("LOADTEST_DEBUG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func raddrOr(direct, proxied string) string {
	if os.Getenv("LOADTEST_DIRECT") != "" {
		return direct
	}
	return proxied
}
