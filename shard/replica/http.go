package replica

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
)

// HTTPPath is the path a node serves requests on.
const HTTPPath = "/replica/v1/call"

// defaultMaxReplyBytes bounds a reply HTTPTransport reads when
// MaxReplyBytes is zero.
const defaultMaxReplyBytes = 64 << 20

// HTTPTransport is a [Transport] over HTTP: each call is a POST of the
// request, as JSON, to HTTPPath on the node's base URL, answered by
// [NewHTTPHandler]. A reply that does not decode, or is larger than
// MaxReplyBytes, is an error wrapping [ErrBadReply], and the node counts as
// failed. The zero value has no nodes; it is safe for concurrent use once
// configured.
type HTTPTransport struct {
	// Nodes maps a node's name to its base URL, such as
	// "http://127.0.0.1:7001".
	Nodes map[string]string
	// Client sends the requests; nil means http.DefaultClient.
	Client *http.Client
	// MaxReplyBytes bounds a reply's body; zero means 64 MiB.
	MaxReplyBytes int64
}

var _ Transport = (*HTTPTransport)(nil)

// Call posts req to the node named to and decodes its reply.
func (t *HTTPTransport) Call(ctx context.Context, to string, req *Request) (*Response, error) {
	base, ok := t.Nodes[to]
	if !ok {
		return nil, fmt.Errorf("%w: %s has no address", ErrNodeDown, to)
	}
	body, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(base, "/")+HTTPPath, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("replica: node %s: %w", to, err)
	}
	hreq.Header.Set("Content-Type", "application/json")
	client := t.Client
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(hreq)
	if err != nil {
		if op := (*net.OpError)(nil); errors.As(err, &op) && op.Op == "dial" {
			return nil, fmt.Errorf("%w: %s: %w", ErrNodeDown, to, err)
		}
		return nil, fmt.Errorf("replica: node %s: %w", to, err)
	}
	defer resp.Body.Close()
	limit := t.MaxReplyBytes
	if limit <= 0 {
		limit = defaultMaxReplyBytes
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, fmt.Errorf("replica: node %s: %w", to, err)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%w: node %s sent more than %d bytes", ErrBadReply, to, limit)
	}
	if resp.StatusCode != http.StatusOK {
		msg := strings.TrimSpace(string(b[:min(len(b), 200)]))
		if resp.StatusCode == http.StatusBadRequest {
			return nil, fmt.Errorf("%w: node %s: %s", ErrInvalidArgument, to, msg)
		}
		return nil, fmt.Errorf("replica: node %s: %s: %s", to, resp.Status, msg)
	}
	var out Response
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&out); err != nil {
		return nil, fmt.Errorf("%w: node %s: %w", ErrBadReply, to, err)
	}
	return &out, nil
}

// maxRequestBytes bounds a request body a handler reads.
const maxRequestBytes = defaultMaxReplyBytes

// NewHTTPHandler returns the HTTP side of a node: it serves POSTs on
// HTTPPath by calling h. A request that does not decode, or that h rejects
// as bad input, is answered 400; any other error 500.
func NewHTTPHandler(h Handler) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+HTTPPath, func(w http.ResponseWriter, r *http.Request) {
		var req Request
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxRequestBytes)).Decode(&req); err != nil {
			http.Error(w, "replica: request does not decode: "+err.Error(), http.StatusBadRequest)
			return
		}
		resp, err := h.Handle(r.Context(), &req)
		switch {
		case errors.Is(err, ErrInvalidArgument):
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		case err != nil:
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(resp)
	})
	return mux
}
