// Package examples holds the runnable programs and the trade-off lab, one
// folder each; this file only tests the repository's Markdown.
package examples

import (
	"bytes"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/yuin/goldmark"
	"github.com/yuin/goldmark/extension"
)

// markdownFiles lists the repository's Markdown files, paths relative to
// root.
func markdownFiles(t *testing.T, root string) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() && path != root && (strings.HasPrefix(name, ".") || name == "report" || name == "testdata") {
			return filepath.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(name, ".md") {
			rel, _ := filepath.Rel(root, path)
			files = append(files, rel)
		}
		return nil
	})
	require.NoError(t, err)
	return files
}

var (
	fenceRE  = regexp.MustCompile("^\\s*(```|~~~)")
	delimRE  = regexp.MustCompile(`^\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)*\|?\s*$`)
	paraRE   = regexp.MustCompile(`(?s)<p>(.*?)</p>`)
	hrefRE   = regexp.MustCompile(`<a href="([^"]*)"`)
	trRE     = regexp.MustCompile(`<tr>`)
	schemeRE = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9+.-]*:`)
)

// repoRoot is the repository's root, seen from this folder.
const repoRoot = ".."

// tableRows counts the lines of a Markdown source that are table rows
// (pipe-led, outside code blocks), not counting delimiter rows.
func tableRows(src string) int {
	n, inFence := 0, false
	for _, l := range strings.Split(src, "\n") {
		if fenceRE.MatchString(l) {
			inFence = !inFence
			continue
		}
		if !inFence && strings.HasPrefix(strings.TrimSpace(l), "|") && !delimRE.MatchString(strings.TrimSpace(l)) {
			n++
		}
	}
	return n
}

// Every Markdown file renders as GitHub renders it (goldmark with GitHub
// Flavored Markdown): each table row is a row of a table, not a paragraph
// of pipes, and each relative link points at a file or folder of the
// repository.
func TestMarkdownRendersAsOnGitHub(t *testing.T) {
	md := goldmark.New(goldmark.WithExtensions(extension.GFM))
	root, err := filepath.Abs(repoRoot)
	require.NoError(t, err)
	files := markdownFiles(t, root)
	require.Contains(t, files, "README.md")
	for _, file := range files {
		t.Run(file, func(t *testing.T) {
			src, err := os.ReadFile(filepath.Join(root, file))
			require.NoError(t, err)
			var out bytes.Buffer
			require.NoError(t, md.Convert(src, &out))
			page := out.String()

			assert.Equal(t, tableRows(string(src)), len(trRE.FindAllString(page, -1)),
				"every pipe-led line is a table row (a blank line inside a table ends it)")
			for _, p := range paraRE.FindAllStringSubmatch(page, -1) {
				for _, l := range strings.Split(p[1], "\n") {
					if strings.HasPrefix(strings.TrimSpace(l), "|") {
						t.Errorf("a table row renders as text: %.120q", l)
					}
				}
			}

			for _, h := range hrefRE.FindAllStringSubmatch(page, -1) {
				link := h[1]
				if link == "" || strings.HasPrefix(link, "#") || schemeRE.MatchString(link) {
					continue
				}
				u, err := url.Parse(link)
				if !assert.NoError(t, err, "link %q", link) {
					continue
				}
				target := filepath.Clean(filepath.Join(root, filepath.Dir(file), filepath.FromSlash(u.Path)))
				if rel, err := filepath.Rel(root, target); err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
					t.Errorf("link %q leaves the repository", link)
					continue
				}
				_, err = os.Stat(target)
				assert.NoError(t, err, "link %q points at nothing", link)
			}
		})
	}
}
