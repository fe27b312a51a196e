package registry

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/sysdesign-go/sysdesign/consensus"
)

// ClientOptions configures a [Client]. The zero value is ready to use.
type ClientOptions struct {
	// HTTP sends the requests. Nil means a client without a timeout (the
	// context bounds each call; a watch is a long-lived stream).
	HTTP *http.Client
	// Token, if set, is sent as a bearer token with every request, for a
	// registry with access control ([HandlerOptions.Auth]). For a client
	// certificate, set it in HTTP's transport.
	Token string
	// RetryWait is the pause before trying the next node when none
	// answered, or before reconnecting a watch. Zero means 100 ms.
	RetryWait time.Duration
}

// Client speaks the registry's HTTP API ([Handler]) for instances and
// clients in other processes. It knows every node of the registry: a
// write that reaches a follower is sent again to the leader it names, a
// node that does not answer is skipped, a write whose outcome a leader
// change left unknown is sent again, and a watch whose node goes away
// reconnects to another, starting again from the complete set. A leader
// election therefore costs a caller a delay, not an error, as long as its
// context allows.
//
// A Client owns no goroutine (a watch runs in its caller's) and is safe
// for concurrent use.
type Client struct {
	endpoints []string
	opts      ClientOptions

	mu     sync.Mutex
	leader string // guarded by mu: the base URL that last accepted a write
}

// authorize adds the client's bearer token to req.
func (c *Client) authorize(req *http.Request) {
	if c.opts.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.opts.Token)
	}
}

// NewClient returns a client of the registry nodes at endpoints, base URLs
// such as "http://10.0.0.1:8500" (all of one scheme).
func NewClient(endpoints []string, opts ClientOptions) (*Client, error) {
	if len(endpoints) == 0 {
		return nil, fmt.Errorf("%w: no endpoints", ErrInvalid)
	}
	for _, e := range endpoints {
		if u, err := url.Parse(e); err != nil || u.Scheme == "" || u.Host == "" {
			return nil, fmt.Errorf("%w: endpoint %q is not a base URL such as http://host:port", ErrInvalid, e)
		}
	}
	if opts.RetryWait < 0 {
		return nil, fmt.Errorf("%w: negative RetryWait %v", ErrInvalid, opts.RetryWait)
	}
	if opts.HTTP == nil {
		opts.HTTP = &http.Client{}
	}
	if opts.RetryWait == 0 {
		opts.RetryWait = 100 * time.Millisecond
	}
	return &Client{endpoints: append([]string(nil), endpoints...), opts: opts}, nil
}

// Register registers inst under a lease of ttl; see [Registry.Register].
func (c *Client) Register(ctx context.Context, inst Instance, ttl time.Duration) (Registration, error) {
	body, _ := json.Marshal(registerJSON{Addr: inst.Addr, Zone: inst.Zone, Weight: inst.Weight, Meta: inst.Meta, TTLms: ttl.Milliseconds()})
	if err := inst.validate(); err != nil {
		return Registration{}, err
	}
	var out registrationJSON
	err := c.write(ctx, http.MethodPut, "/v1/services/"+url.PathEscape(inst.Service)+"/instances/"+url.PathEscape(inst.ID), body, &out)
	return Registration{Instance: out.Instance, Lease: out.Lease, TTL: time.Duration(out.TTLms) * time.Millisecond, Revision: out.Revision}, err
}

// Heartbeat renews a registration; see [Registry.Heartbeat].
func (c *Client) Heartbeat(ctx context.Context, lease consensus.LeaseID) error {
	return c.write(ctx, http.MethodPost, fmt.Sprintf("/v1/registrations/%d/heartbeat", lease), nil, nil)
}

// Deregister removes an instance; see [Registry.Deregister].
func (c *Client) Deregister(ctx context.Context, service, id string) error {
	return c.write(ctx, http.MethodDelete, "/v1/services/"+url.PathEscape(service)+"/instances/"+url.PathEscape(id), nil, nil)
}

// List returns a service's instances and the revision they reflect, read
// on the leader; see [Registry.List].
func (c *Client) List(ctx context.Context, service string) ([]Instance, uint64, error) {
	if err := validName("service name", service); err != nil {
		return nil, 0, err
	}
	var out listJSON
	err := c.write(ctx, http.MethodGet, "/v1/services/"+url.PathEscape(service), nil, &out)
	return out.Instances, out.Revision, err
}

// Source returns the discovery source of service, watched through c.
func (c *Client) Source(service string) *Source { return &Source{w: c, service: service} }

// write sends a request to the leader, following redirections and
// skipping nodes that do not answer, until it gets an answer or ctx ends.
func (c *Client) write(ctx context.Context, method, path string, body []byte, out any) error {
	c.mu.Lock()
	target := c.leader
	c.mu.Unlock()
	var last error
	redirected := false
	for i := 0; ; i++ {
		if target == "" {
			target = c.endpoints[i%len(c.endpoints)]
		}
		status, raw, err := c.do(ctx, method, target+path, body)
		if err == nil && status < 300 {
			c.mu.Lock()
			c.leader = target
			c.mu.Unlock()
			if out != nil {
				return json.Unmarshal(raw, out)
			}
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("registry: %s %s: %w (last failure: %v)", method, path, ctx.Err(), last)
		}
		var p problem
		if err == nil {
			_ = json.Unmarshal(raw, &p)
			if status != http.StatusServiceUnavailable && status != http.StatusGatewayTimeout {
				return problemErr(status, p)
			}
			// 503: no leader here; 504: the leader was lost while the write
			// was committing (it may have applied): both are retried, which
			// is safe for a registration, a heartbeat and a list; a
			// deregistration retried after it applied answers
			// ErrNotRegistered.
			err = fmt.Errorf("%s answered %d: %s", target, status, p.Detail)
		}
		last, target = err, ""
		if p.LeaderAPI != "" && !redirected { // follow a redirection once in a row
			scheme := "http://"
			if strings.HasPrefix(c.endpoints[0], "https://") {
				scheme = "https://"
			}
			target, redirected = scheme+p.LeaderAPI, true
			continue
		}
		redirected = false
		if (i+1)%len(c.endpoints) == 0 { // every node tried: wait for an election
			select {
			case <-ctx.Done():
				return fmt.Errorf("registry: %s %s: %w (last failure: %v)", method, path, ctx.Err(), last)
			case <-time.After(c.opts.RetryWait):
			}
		}
	}
}

func (c *Client) do(ctx context.Context, method, u string, body []byte) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, u, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	c.authorize(req)
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.opts.HTTP.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	return resp.StatusCode, raw, err
}

// problemErr maps a problem answer back to the package's sentinels.
func problemErr(status int, p problem) error {
	switch status {
	case http.StatusBadRequest, http.StatusRequestEntityTooLarge:
		return fmt.Errorf("%w: %s", ErrInvalid, p.Detail)
	case http.StatusNotFound:
		return fmt.Errorf("%w: %s", ErrNotRegistered, p.Detail)
	case http.StatusConflict:
		return fmt.Errorf("%w: %s", ErrDuplicateInstance, p.Detail)
	case http.StatusUnauthorized:
		return fmt.Errorf("%w: %s", consensus.ErrUnauthenticated, p.Detail)
	case http.StatusForbidden:
		return fmt.Errorf("%w: %s", consensus.ErrForbidden, p.Detail)
	}
	return fmt.Errorf("registry: status %d: %s", status, p.Detail)
}

// Watch calls update with the service's complete instance set, once at the
// start and again after every change, until ctx ends; when its node goes
// away it reconnects to another and starts again from the complete set. It
// returns ctx's error, or the error of a request the registry refuses (an
// invalid service name, a caller it does not admit). update is never
// called concurrently.
func (c *Client) Watch(ctx context.Context, service string, update func([]Instance)) error {
	if err := validName("service name", service); err != nil {
		return err
	}
	if update == nil {
		return fmt.Errorf("%w: nil update function", ErrInvalid)
	}
	for i := 0; ; i++ {
		err := c.watchOnce(ctx, c.endpoints[i%len(c.endpoints)]+"/v1/services/"+url.PathEscape(service)+"/watch", update)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if errors.Is(err, ErrInvalid) || errors.Is(err, consensus.ErrUnauthenticated) || errors.Is(err, consensus.ErrForbidden) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(c.opts.RetryWait):
		}
	}
}

// watchOnce follows one node's stream until it ends.
func (c *Client) watchOnce(ctx context.Context, u string, update func([]Instance)) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	c.authorize(req)
	resp, err := c.opts.HTTP.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var p problem
		raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		_ = json.Unmarshal(raw, &p)
		return problemErr(resp.StatusCode, p)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
	var event string
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "event: "):
			event = line[len("event: "):]
		case strings.HasPrefix(line, "data: ") && event == "instances":
			var insts []Instance
			if err := json.Unmarshal([]byte(line[len("data: "):]), &insts); err != nil {
				return fmt.Errorf("registry: watch stream: %w", err)
			}
			update(insts)
		case strings.HasPrefix(line, "data: ") && event == "error":
			return fmt.Errorf("registry: watch stream ended: %s", line[len("data: "):])
		}
	}
	// Watch reconnects after either error alike; the scanner's is kept for
	// its message.
	if err := sc.Err(); err != nil {
		return err
	}
	return io.ErrUnexpectedEOF
}
