package service

import (
	"io"
	"net/http"
)

// maxDrainBytes is the most of a request body the service reads and
// discards before it answers early (a 413, a 415, a 429): a client that is
// still uploading when the server answers and closes gets a connection
// reset, and loses the answer, unless the server reads what is still
// coming. Larger bodies, declared or found, are answered with
// "Connection: close" and not read on.
const maxDrainBytes = 8 << 20

// drainBody makes every answer to a request with a body wait until the
// body has been read to its end (up to maxDrainBytes), whatever the
// handler read of it.
func drainBody(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body == nil || r.Body == http.NoBody {
			h.ServeHTTP(w, r)
			return
		}
		h.ServeHTTP(&drainWriter{ResponseWriter: w, r: r}, r)
	})
}

// drainWriter drains the request body before the response starts.
type drainWriter struct {
	http.ResponseWriter
	r       *http.Request
	drained bool
}

func (d *drainWriter) drain() {
	if d.drained {
		return
	}
	d.drained = true
	if d.r.ContentLength > maxDrainBytes {
		d.Header().Set("Connection", "close")
		return
	}
	n, err := io.CopyN(io.Discard, d.r.Body, maxDrainBytes+1)
	if n > maxDrainBytes || err != nil && err != io.EOF {
		d.Header().Set("Connection", "close")
	}
}

func (d *drainWriter) WriteHeader(status int) {
	d.drain()
	d.ResponseWriter.WriteHeader(status)
}

func (d *drainWriter) Write(b []byte) (int, error) {
	d.drain()
	return d.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the server's writer.
func (d *drainWriter) Unwrap() http.ResponseWriter { return d.ResponseWriter }
