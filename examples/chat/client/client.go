// Package client is a Go client of the chat gateway (package service):
// a WebSocket connection, the ordering and de-duplication a client owes
// the protocol ([Order]), and end-to-end encryption ([Seal], [Open]).
// The tests, the load test and the lab use it; the web page does the same
// in JavaScript.
package client

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"

	"github.com/coder/websocket"

	"github.com/sysdesign-go/sysdesign/examples/chat/service"
)

// Conn is one WebSocket connection to a gateway. Its Send, Ack and Ping
// may be called concurrently with one goroutine calling Read.
type Conn struct {
	ws *websocket.Conn
}

// Dial connects to the gateway (or balancer) at base, an http:// or
// https:// URL, as the user the token names.
func Dial(ctx context.Context, base, token string) (*Conn, error) {
	u, err := url.Parse(base)
	if err != nil {
		return nil, fmt.Errorf("client: base URL %q: %w", base, err)
	}
	u.Scheme = strings.Replace(u.Scheme, "http", "ws", 1)
	u.Path = strings.TrimSuffix(u.Path, "/") + "/api/v1/ws"
	u.RawQuery = url.Values{"access_token": {token}}.Encode()
	ws, _, err := websocket.Dial(ctx, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("client: dial %s: %w", base, err)
	}
	ws.SetReadLimit(1 << 20)
	return &Conn{ws: ws}, nil
}

// Send sends a message; the gateway answers with a "sent" or an "error"
// frame carrying the same id.
func (c *Conn) Send(ctx context.Context, conv, id, body string) error {
	return c.Write(ctx, service.Frame{Type: "send", Conv: conv, ID: id, Body: body})
}

// Ack acknowledges every message of conv up to seq.
func (c *Conn) Ack(ctx context.Context, conv string, seq int64) error {
	return c.Write(ctx, service.Frame{Type: "ack", Conv: conv, Seq: seq})
}

// Write sends any frame.
func (c *Conn) Write(ctx context.Context, f service.Frame) error {
	b, err := json.Marshal(f)
	if err != nil {
		return err
	}
	return c.ws.Write(ctx, websocket.MessageText, b)
}

// WriteRaw sends a raw text frame (for tests of bad input).
func (c *Conn) WriteRaw(ctx context.Context, typ websocket.MessageType, b []byte) error {
	return c.ws.Write(ctx, typ, b)
}

// Read returns the next frame from the gateway. Its error carries the
// close code when the gateway closed the connection
// (websocket.CloseStatus).
func (c *Conn) Read(ctx context.Context) (service.Frame, error) {
	_, b, err := c.ws.Read(ctx)
	if err != nil {
		return service.Frame{}, err
	}
	var f service.Frame
	if err := json.Unmarshal(b, &f); err != nil {
		return service.Frame{}, fmt.Errorf("client: frame %q: %w", b, err)
	}
	return f, nil
}

// Close closes the connection with a normal closure.
func (c *Conn) Close() error { return c.ws.Close(websocket.StatusNormalClosure, "") }

// CloseNow drops the connection without a closing handshake, as a client
// that loses its network does.
func (c *Conn) CloseNow() error { return c.ws.CloseNow() }

// Order puts each conversation's messages in sequence order and drops
// those already shown, which is what makes a redelivered message show
// once: Accept returns the messages that may be shown now, in order, and
// the sequence number to acknowledge (the last one shown). The zero value
// starts every conversation at 0; Start sets where one resumes (from the
// hello frame's acked map). An Order is not safe for concurrent use.
type Order struct {
	next    map[string]int64 // per conversation, the last shown
	pending map[string]map[int64]service.Frame
}

// Start records that conv was shown up to seq.
func (o *Order) Start(conv string, seq int64) {
	o.init()
	if seq > o.next[conv] {
		o.next[conv] = seq
	}
}

// Shown returns the last sequence number shown in conv.
func (o *Order) Shown(conv string) int64 { return o.next[conv] }

func (o *Order) init() {
	if o.next == nil {
		o.next, o.pending = map[string]int64{}, map[string]map[int64]service.Frame{}
	}
}

// Accept takes a "msg" frame. dup reports a frame already shown or
// already waiting for an earlier one.
func (o *Order) Accept(f service.Frame) (show []service.Frame, ack int64, dup bool) {
	o.init()
	last := o.next[f.Conv]
	if f.Seq <= last {
		return nil, 0, true
	}
	p := o.pending[f.Conv]
	if p == nil {
		p = map[int64]service.Frame{}
		o.pending[f.Conv] = p
	}
	if _, ok := p[f.Seq]; ok {
		return nil, 0, true
	}
	p[f.Seq] = f
	for {
		g, ok := p[last+1]
		if !ok {
			break
		}
		delete(p, last+1)
		last++
		show = append(show, g)
	}
	o.next[f.Conv] = last
	if len(show) == 0 {
		return nil, 0, false
	}
	return show, last, false
}
