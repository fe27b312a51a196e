package service

import (
	"embed"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"unicode/utf8"
)

//go:embed web
var web embed.FS

// pageCSP is the Content-Security-Policy of every response: the page runs
// only its own script and style, and talks only to its own origin (ws:
// included).
const pageCSP = "default-src 'self'; connect-src 'self'; img-src 'self' blob: data:; base-uri 'none'; form-action 'self'"

// pageHandler serves the static client page. A path no file could have
// (not UTF-8, or not a valid fs path) is a 404, not the file server's 500.
func pageHandler() http.Handler {
	sub, _ := fs.Sub(web, "web")
	files := http.FileServerFS(sub)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := strings.TrimPrefix(path.Clean(r.URL.Path), "/")
		if name == "" {
			name = "."
		}
		if !utf8.ValidString(name) || !fs.ValidPath(name) {
			http.NotFound(w, r)
			return
		}
		files.ServeHTTP(w, r)
	})
}
