package examples_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// guideSections are the top-level and second-level headings of the guide
// System Design Round — Principal Engineer Interview Preparation, as doc
// comments write them (without the numbering of the topic headings), each
// with its child headings. A section a doc comment names starts with one of
// them; when it has children, its next part is one of those.
var guideSections = map[string][]string{
	"Key System Design Topics": {"Scalability Patterns", "Distributed Systems", "Database Design",
		"Microservices Architecture", "Performance & Scalability"},
	"Scalability Patterns":       {"Horizontal vs Vertical Scaling", "Load Balancing Strategies"},
	"Distributed Systems":        {"CAP Theorem", "Consistency Models", "Distributed Consensus"},
	"Database Design":            {"Relational vs NoSQL", "Database Sharding", "Caching Strategies"},
	"Microservices Architecture": {"Service Decomposition", "Service Communication", "Service Discovery"},
	"Performance & Scalability":  {"Database Optimization", "API Design"},
	"Real-World System Designs": {"1. URL Shortener Service", "2. Chat Application",
		"3. Social Media Feed", "4. E-commerce Platform"},
	"Performance Considerations": {"Latency Optimization", "Throughput Optimization"},
	"Monitoring & Observability": {"Logging Strategy", "Metrics & Alerting"},
	"Security & Reliability":     {"Security Considerations", "Fault Tolerance"},
	"Advanced System Design Topics": {"Event-Driven Architecture", "Data Pipeline Architecture",
		"Machine Learning Systems", "Blockchain and Distributed Ledgers", "Edge Computing and IoT"},

	// Second-level headings: what follows them are the guide's bullets.
	"Horizontal vs Vertical Scaling": nil, "Load Balancing Strategies": nil,
	"CAP Theorem": nil, "Consistency Models": nil, "Distributed Consensus": nil,
	"Relational vs NoSQL": nil, "Database Sharding": nil, "Caching Strategies": nil,
	"Service Decomposition": nil, "Service Communication": nil, "Service Discovery": nil,
	"Database Optimization": nil, "API Design": nil,
	"Latency Optimization": nil, "Throughput Optimization": nil,
	"Logging Strategy": nil, "Metrics & Alerting": nil,
	"Security Considerations": nil, "Fault Tolerance": nil,
	"Event-Driven Architecture": nil, "Data Pipeline Architecture": nil,
	"Machine Learning Systems": nil, "Blockchain and Distributed Ledgers": nil,
	"Edge Computing and IoT": nil,
}

// exampleLibraryPackages are the library packages with examples; the walk
// below must find each of them, so that a change of layout cannot leave
// one unchecked.
var exampleLibraryPackages = []string{
	"cache", "cache/rediscache", "consensus", "consensus/registry", "lb", "ratelimit", "ratelimit/redislimit",
	"resilience", "resilience/degrade", "resilience/dlq", "resilience/dlq/redisdlq", "resilience/fault",
	"resilience/redisbreaker", "resilience/sharedbreaker", "shard", "shard/redisshard", "shard/replica",
}

// quoted is a double-quoted span of a doc comment whose lines were joined.
var quoted = regexp.MustCompile(`"([^"]*)"`)

// TestExampleDocsNameGuideSections checks that every Example function of
// the library packages and every example program names, in its doc
// comment, the guide section it illustrates: a path such as
// "Database Design → Caching Strategies", in quotes, that starts with a
// heading of the guide (and, below a heading with child headings, goes on
// with one of them).
func TestExampleDocsNameGuideSections(t *testing.T) {
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}

	// The library packages: every directory of the repository holding an
	// example_test.go, outside examples/, bench/ and internal/.
	var libDirs []string
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			if rel == "examples" || rel == "bench" || rel == "internal" || strings.HasPrefix(d.Name(), ".") && rel != "." {
				return filepath.SkipDir
			}
			return nil
		}
		if d.Name() == "example_test.go" {
			libDirs = append(libDirs, filepath.Dir(p))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var found []string
	for _, dir := range libDirs {
		rel, _ := filepath.Rel(root, dir)
		found = append(found, filepath.ToSlash(rel))
	}
	for _, want := range exampleLibraryPackages {
		if !slices.Contains(found, want) {
			t.Errorf("no example_test.go found in %s (found %v)", want, found)
		}
	}

	fset := token.NewFileSet()
	parse := func(path string) *ast.File {
		f, err := parser.ParseFile(fset, path, nil, parser.ParseComments)
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	examples := 0
	for _, dir := range libDirs {
		tests, err := filepath.Glob(filepath.Join(dir, "*_test.go"))
		if err != nil {
			t.Fatal(err)
		}
		for _, path := range tests {
			rel, _ := filepath.Rel(root, path)
			for _, decl := range parse(path).Decls {
				fn, ok := decl.(*ast.FuncDecl)
				if !ok || fn.Recv != nil || !strings.HasPrefix(fn.Name.Name, "Example") {
					continue
				}
				examples++
				checkGuideSections(t, filepath.ToSlash(rel)+": "+fn.Name.Name, fn.Doc)
			}
		}
	}
	if examples == 0 {
		t.Fatal("no Example function found")
	}

	programs := 0
	err = filepath.WalkDir(filepath.Join(root, "examples"), func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || d.Name() != "main.go" {
			return err
		}
		f := parse(p)
		if f.Name.Name != "main" {
			return nil
		}
		programs++
		rel, _ := filepath.Rel(root, p)
		checkGuideSections(t, "program "+filepath.ToSlash(filepath.Dir(rel)), f.Doc)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if programs == 0 {
		t.Fatal("no example program found")
	}
}

// checkGuideSections reports what, if doc names no guide section or names
// one that is not in the guide.
func checkGuideSections(t *testing.T, what string, doc *ast.CommentGroup) {
	t.Helper()
	text := ""
	if doc != nil {
		text = strings.Join(strings.Fields(doc.Text()), " ")
	}
	named := 0
	for _, m := range quoted.FindAllStringSubmatch(text, -1) {
		if !strings.Contains(m[1], " → ") {
			continue
		}
		named++
		if err := guideSection(m[1]); err != "" {
			t.Errorf("%s: %q: %s", what, m[1], err)
		}
	}
	if named == 0 {
		t.Errorf(`%s: its doc comment names no guide section (a "Heading → Subsection" path in quotes)`, what)
	}
}

// guideSection returns why path is not a section of the guide, or "".
func guideSection(path string) string {
	parts := strings.Split(path, " → ")
	children, ok := guideSections[parts[0]]
	if !ok {
		return "does not start with a heading of the guide"
	}
	if len(children) == 0 {
		return ""
	}
	next, _, _ := strings.Cut(parts[1], ":")
	if !slices.Contains(children, next) {
		return "after " + parts[0] + " comes one of " + strings.Join(children, ", ")
	}
	return ""
}
