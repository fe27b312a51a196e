package examples_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// The library packages whose documentation a new user reads first.
var libraryPackages = []string{"lb", "cache", "cache/rediscache", "shard", "shard/replica", "consensus", "consensus/registry", "ratelimit", "resilience"}

var exampleName = regexp.MustCompile(`\bExample[A-Za-z0-9_]*`)

// TestPackageDocsGiveAStartingPoint checks what `go doc` shows a new user
// of each library package: before its first heading, the package comment
// names the guide by its title, a code block (the lines a user writes
// first) comes within its first 40 lines, and every Example it names
// exists in the package's tests.
func TestPackageDocsGiveAStartingPoint(t *testing.T) {
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	for _, rel := range libraryPackages {
		t.Run(strings.ReplaceAll(rel, "/", "_"), func(t *testing.T) {
			dir := filepath.Join(root, rel)
			fset := token.NewFileSet()
			var doc string
			examples := map[string]bool{}
			entries, err := os.ReadDir(dir)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range entries {
				if e.IsDir() || !strings.HasSuffix(e.Name(), ".go") {
					continue
				}
				f, err := parser.ParseFile(fset, filepath.Join(dir, e.Name()), nil, parser.ParseComments)
				if err != nil {
					t.Fatal(err)
				}
				if f.Doc != nil && !strings.HasSuffix(f.Name.Name, "_test") {
					doc += f.Doc.Text()
				}
				for _, d := range f.Decls {
					if fn, ok := d.(*ast.FuncDecl); ok && fn.Recv == nil && strings.HasPrefix(fn.Name.Name, "Example") {
						examples[fn.Name.Name] = true
					}
				}
			}
			if doc == "" {
				t.Fatal("no package comment")
			}
			intro, _, _ := strings.Cut(doc, "\n# ")
			if !strings.Contains(strings.Join(strings.Fields(intro), " "), "System Design Round — Principal Engineer Interview Preparation") {
				t.Errorf("the package comment's opening does not name the guide by its title")
			}
			lines := strings.Split(doc, "\n")
			code := -1
			for i, l := range lines {
				if strings.HasPrefix(l, "\t") {
					code = i
					break
				}
			}
			if code < 0 || code >= 40 {
				t.Errorf("the package comment's first code block is at line %d, not within its first 40 lines", code+1)
			}
			for _, name := range exampleName.FindAllString(doc, -1) {
				if !examples[name] {
					t.Errorf("the package comment names %s, which the package does not have", name)
				}
			}
		})
	}
}
