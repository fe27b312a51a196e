package examples_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"go/parser"
	"go/token"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Bounds of the documented-commands test.
const (
	// batchBound is how long a program that neither exits nor listens may
	// run: a bad flag or a failed setup ends it well before.
	batchBound = time.Second
	// readyBound is how long a server may take to accept connections.
	readyBound = 20 * time.Second
	// clientBound is how long a client command is retried, while it gets
	// no answer, a 404 or a 5xx, until it gets a 2xx or 3xx ("503 for a
	// moment, then ..." in a README).
	clientBound = 20 * time.Second
	// stopBound is how long a server may take to stop on SIGTERM.
	stopBound = 15 * time.Second
)

// exempt are documented commands this test does not run, and why.
var exempt = map[string]string{
	"make test":     "runs this test: it would recurse",
	"make demo":     "the full lab takes minutes; its program runs here as `go run ./examples/tradeoffs`, bounded",
	"make bench":    "every benchmark of the module, minutes; the benchmarks compile in `make test`",
	"make lint":     "gofmt, go vet and staticcheck over the module, minutes; a step of its own",
	"make mutation": "mutation testing, tens of minutes a package; not part of make test",
	"make fuzz":     "the last step of make test, which runs it after this test",
	"go test -run '^$' -bench BenchmarkService_ -benchmem -count 3 -benchtime 200ms ./examples/shortener/service/": "a benchmark run on a quiet machine; `make bench` runs the same benchmarks",
	"go tool pprof -top -cum": "a fragment of a command: it needs a profile the loadtest writes",
}

// commandWords start the lines of a doc comment or inline code span that
// are commands.
var commandWords = map[string]bool{"go": true, "curl": true, "make": true, "raftkv": true, "kill": true}

// A script is the commands of one README (its sh blocks, run in order as
// in one shell) or of one code block of a doc comment or one inline code
// span.
type script struct {
	source string
	lines  []string
}

// TestDocumentedCommands runs every shell command in every README.md of the
// repository and in the package comment of every example program, so that
// none drifts from what the code accepts.
//
// Each program is compiled once; `go run ./examples/X` and `go build -o P
// ./examples/X` use that binary. Everything runs on loopback in a fresh
// directory: documented ports are mapped to free ones (the same port
// always to the same one within a script), /tmp/ to the directory, port
// 6379 and REDIS_ADDR to a private redis-server (lines needing Redis are
// skipped without one). A program that listens (-addr, -http, -serve, or
// the shortener's default) must accept connections; a server started on an
// address an earlier one of the script holds replaces it, as a user
// stops one variant to try the next. Any other program must exit 0 within
// batchBound or still be running then. A curl must get a 2xx or 3xx
// answer within clientBound (it is retried meanwhile); `<code>` is the
// code the last curl printed. Exempt commands are listed in [exempt].
func TestDocumentedCommands(t *testing.T) {
	if testing.Short() {
		t.Skip("builds every example program; skipped with -short")
	}
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	scripts := collect(t, root)
	if len(scripts) < 10 {
		t.Fatalf("found only %d documented scripts; the extraction is broken", len(scripts))
	}
	bin := t.TempDir()
	// Built as this test is (-race or not), so the build reuses what
	// `go test` compiled.
	args := []string{"build", "-o", bin + string(filepath.Separator)}
	if raceEnabled {
		args = append(args, "-race")
	}
	// The examples are a module of their own: build them from its folder.
	build := exec.Command("go", append(args, "./...")...)
	build.Dir = filepath.Join(root, "examples")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./... in examples: %v\n%s", err, out)
	}
	buildSameNamed(t, build.Dir, bin)
	redisAddr := startRedis(t)
	for _, sc := range scripts {
		t.Run(strings.ReplaceAll(sc.source, "/", "_"), func(t *testing.T) {
			t.Parallel()
			r := &runner{t: t, bin: bin, work: t.TempDir(), redis: redisAddr, ports: map[string]string{}, vars: map[string]string{}}
			defer r.stopAll()
			for _, line := range sc.lines {
				r.run(line)
				if t.Failed() {
					return
				}
			}
		})
	}
}

// collect extracts the scripts of every README.md and example main.go.
func collect(t *testing.T, root string) []script {
	var out []script
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (strings.HasPrefix(d.Name(), ".") || d.Name() == "report" || d.Name() == "testdata") && path != root {
			return filepath.SkipDir
		}
		rel, _ := filepath.Rel(root, path)
		switch {
		case d.Name() == "README.md":
			out = append(out, readme(t, path, rel)...)
		case d.Name() == "main.go" && strings.HasPrefix(rel, "examples"+string(filepath.Separator)):
			out = append(out, docComment(t, path, rel)...)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

var inlineCode = regexp.MustCompile("`([^`]+)`")

// readme returns the sh blocks of a README as one script and each inline
// code span that is a command as a script of its own.
func readme(t *testing.T, path, rel string) []script {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	blocks := script{source: rel}
	var out []script
	fence, shell := false, false
	for i, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "```") {
			lang := strings.TrimSpace(strings.TrimPrefix(line, "```"))
			fence, shell = !fence, !fence && (lang == "sh" || lang == "bash" || lang == "shell")
			continue
		}
		if fence {
			if c := stripComment(line); shell && c != "" {
				blocks.lines = append(blocks.lines, c)
			}
			continue
		}
		for _, m := range inlineCode.FindAllStringSubmatch(line, -1) {
			if isCommand(m[1]) {
				out = append(out, script{source: fmt.Sprintf("%s:%d", rel, i+1), lines: []string{m[1]}})
			}
		}
	}
	if len(blocks.lines) > 0 {
		out = append([]script{blocks}, out...)
	}
	return out
}

// docComment returns each code block of a main package's doc comment as a
// script of its command lines.
func docComment(t *testing.T, path, rel string) []script {
	f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.PackageClauseOnly|parser.ParseComments)
	if err != nil {
		t.Fatal(err)
	}
	if f.Name.Name != "main" || f.Doc == nil {
		return nil
	}
	var out []script
	var cur *script
	for i, line := range strings.Split(f.Doc.Text(), "\n") {
		if line == "" {
			continue // a blank line inside a code block does not end it
		}
		if !strings.HasPrefix(line, "\t") {
			cur = nil
			continue
		}
		c := stripComment(line)
		if !isCommand(c) {
			continue
		}
		if cur == nil {
			out = append(out, script{source: fmt.Sprintf("%s:doc:%d", rel, i+1)})
			cur = &out[len(out)-1]
		}
		cur.lines = append(cur.lines, c)
	}
	return out
}

// isCommand reports whether s (after any VAR=value assignments) starts
// with a command word and has more than the word alone.
func isCommand(s string) bool {
	f := strings.Fields(s)
	for len(f) > 0 && strings.Contains(f[0], "=") {
		f = f[1:]
	}
	return len(f) > 1 && commandWords[f[0]] && (f[0] != "go" || len(f) > 2)
}

// stripComment removes a shell comment (a # after a blank, outside
// quotes) and surrounding space.
func stripComment(line string) string {
	var quote byte
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '\'' || c == '"':
			quote = c
		case c == '#' && (i == 0 || line[i-1] == ' ' || line[i-1] == '\t'):
			return strings.TrimSpace(line[:i])
		}
	}
	return strings.TrimSpace(line)
}

// startRedis starts a private redis-server for the commands that use
// Redis, or returns "" if none is installed.
func startRedis(t *testing.T) string {
	path, err := exec.LookPath("redis-server")
	if err != nil {
		t.Log("redis-server not installed: commands that need Redis are skipped")
		return ""
	}
	addr := freeAddr(t)
	_, port, _ := net.SplitHostPort(addr)
	cmd := exec.Command(path, "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", t.TempDir())
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	if err := waitListening(addr, readyBound, nil); err != nil {
		t.Fatalf("redis-server: %v", err)
	}
	return addr
}

func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// waitListening waits until addr accepts a connection, the bound passes or
// exited is closed.
func waitListening(addr string, bound time.Duration, exited <-chan struct{}) error {
	deadline := time.Now().Add(bound)
	for {
		if c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond); err == nil {
			c.Close()
			return nil
		}
		select {
		case <-exited:
			return errors.New("exited before it listened on " + addr)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("nothing listens on %s after %v", addr, bound)
		}
	}
}

// runner runs the lines of one script.
type runner struct {
	t     *testing.T
	bin   string
	work  string
	redis string
	ports map[string]string // documented port → free loopback port
	vars  map[string]string // <name> → value
	procs []*proc           // started programs, in order
	jobs  []*proc           // those started in the background (&): %1, %2, ...
}

type proc struct {
	line   string
	cmd    *exec.Cmd
	out    *bytes.Buffer
	listen []string
	exited chan struct{}
	err    error // valid once exited is closed
}

var (
	goRun       = regexp.MustCompile(`\bgo run \./examples/([\w/]+)`)
	goBuild     = regexp.MustCompile(`\bgo build -o (\S+) \./examples/([\w/]+)`)
	makeDemo    = regexp.MustCompile(`^make demo DEMOFLAGS=("[^"]*"|'[^']*'|\S+)$`)
	hostPort    = regexp.MustCompile(`(localhost|127\.0\.0\.1|\s):(\d{2,5})\b`)
	listenFlag  = regexp.MustCompile(`-(?:addr|http|serve|debug-addr) (\S+)`)
	placeholder = regexp.MustCompile(`<[^>]+>`)
	codeOut     = regexp.MustCompile(`"code":"([^"]+)"`)
)

// rewrite maps a documented line onto this test's binaries, directory and
// ports.
func (r *runner) rewrite(line string) string {
	line = strings.ReplaceAll(line, "/tmp/", r.work+"/tmp/")
	line = goBuild.ReplaceAllStringFunc(line, func(m string) string {
		s := goBuild.FindStringSubmatch(m)
		return "cp " + r.binary(s[2]) + " " + s[1]
	})
	line = goRun.ReplaceAllStringFunc(line, func(m string) string { return r.binary(goRun.FindStringSubmatch(m)[1]) })
	if m := makeDemo.FindStringSubmatch(line); m != nil {
		line = r.binary("tradeoffs") + " " + strings.Trim(m[1], `"'`)
	}
	if strings.HasPrefix(line, "raftkv ") {
		line = r.binary("raftkv") + strings.TrimPrefix(line, "raftkv")
	}
	line = hostPort.ReplaceAllStringFunc(line, func(m string) string {
		s := hostPort.FindStringSubmatch(m)
		host := s[1]
		if strings.TrimSpace(host) == "" {
			host = s[1] + "127.0.0.1"
		}
		return host + ":" + r.port(s[2])
	})
	for k, v := range r.vars {
		line = strings.ReplaceAll(line, "<"+k+">", v)
	}
	return line
}

// binary is the program built from ./examples/pkg: named by its base name,
// or by its whole path when another program has the same base name (see
// buildSameNamed).
func (r *runner) binary(pkg string) string {
	if p := filepath.Join(r.bin, strings.ReplaceAll(pkg, "/", "_")); strings.Contains(pkg, "/") {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return filepath.Join(r.bin, filepath.Base(pkg))
}

// buildSameNamed builds again, each under its whole path with "/" as "_"
// (chat_loadtest), the programs whose base names collide: `go build -o
// dir/ ./...` writes one file per base name, so only one of them is there.
func buildSameNamed(t *testing.T, dir, bin string) {
	t.Helper()
	list := exec.Command("go", "list", "-f", `{{if eq .Name "main"}}{{.ImportPath}}{{end}}`, "./...")
	list.Dir = dir
	out, err := list.Output()
	if err != nil {
		t.Fatalf("go list ./... in examples: %v", err)
	}
	const module = "github.com/sysdesign-go/sysdesign/examples/"
	byBase := map[string][]string{}
	for _, p := range strings.Fields(string(out)) {
		rel := strings.TrimPrefix(p, module)
		byBase[filepath.Base(rel)] = append(byBase[filepath.Base(rel)], rel)
	}
	for _, rels := range byBase {
		if len(rels) < 2 {
			continue
		}
		for _, rel := range rels {
			a := []string{"build", "-o", filepath.Join(bin, strings.ReplaceAll(rel, "/", "_"))}
			if raceEnabled {
				a = append(a, "-race")
			}
			cmd := exec.Command("go", append(a, "./"+rel)...)
			cmd.Dir = dir
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("go build ./%s: %v\n%s", rel, err, out)
			}
		}
	}
}

// port returns the free port standing in for the documented port p.
func (r *runner) port(p string) string {
	if p == "6379" && r.redis != "" {
		_, rp, _ := net.SplitHostPort(r.redis)
		return rp
	}
	if q, ok := r.ports[p]; ok {
		return q
	}
	_, q, _ := net.SplitHostPort(freeAddr(r.t))
	r.ports[p] = q
	return q
}

func (r *runner) env() []string {
	env := append(os.Environ(),
		"SHORTENER_ADDR=127.0.0.1:"+r.port("8080"), // the shortener's default address, moved like the documented one
		"REDIS_ADDR="+r.redis,
		"CURL_HOME="+r.work,
	)
	return env
}

func (r *runner) run(line string) {
	t := r.t
	if why, ok := exempt[line]; ok {
		t.Logf("exempt: %s (%s)", line, why)
		return
	}
	if (strings.Contains(line, "6379") || strings.Contains(line, "REDIS_ADDR")) && r.redis == "" {
		t.Logf("skipped, no redis-server: %s", line)
		return
	}
	if m := placeholder.FindAllString(line, -1); len(m) > 0 {
		for _, p := range m {
			if _, ok := r.vars[strings.Trim(p, "<>")]; !ok {
				t.Logf("template, not run: %s", line)
				return
			}
		}
	}
	cmdLine := r.rewrite(line)
	t.Logf("run: %s", line)
	if err := os.MkdirAll(filepath.Join(r.work, "tmp"), 0o755); err != nil {
		t.Fatal(err)
	}
	background := strings.HasSuffix(cmdLine, "&")
	cmdLine = strings.TrimSpace(strings.TrimSuffix(cmdLine, "&"))
	first := strings.Fields(cmdLine)
	for len(first) > 1 && strings.Contains(first[0], "=") {
		first = first[1:]
	}
	switch first[0] {
	case "curl":
		r.curl(line, cmdLine)
		return
	case "kill":
		cmdLine = regexp.MustCompile(`%(\d+)`).ReplaceAllStringFunc(cmdLine, func(m string) string {
			n, _ := strconv.Atoi(m[1:])
			if n < 1 || n > len(r.jobs) {
				t.Fatalf("%s: no job %s", line, m)
			}
			return "-- -" + strconv.Itoa(r.jobs[n-1].cmd.Process.Pid) // the job's process group
		})
	}
	p := r.start(line, cmdLine)
	if background {
		r.jobs = append(r.jobs, p)
	}
	if len(p.listen) > 0 {
		for _, a := range p.listen {
			if err := waitListening(a, readyBound, p.exited); err != nil {
				<-p.exited
				t.Fatalf("%s\n(run as %s)\ndid not serve: %v (exit: %v)\n%s", line, cmdLine, err, p.err, p.out)
			}
		}
		return
	}
	select {
	case <-p.exited:
		if p.err != nil {
			t.Fatalf("%s\n(run as %s)\nfailed: %v\n%s", line, cmdLine, p.err, p.out)
		}
	case <-time.After(batchBound):
		r.stop(p) // still running: its flags and setup were accepted
	}
}

// start runs cmdLine in its own process group. A server on an address an
// earlier program of the script holds replaces that program.
func (r *runner) start(line, cmdLine string) *proc {
	p := &proc{line: line, out: &bytes.Buffer{}, exited: make(chan struct{})}
	for _, m := range listenFlag.FindAllStringSubmatch(cmdLine, -1) {
		p.listen = append(p.listen, strings.TrimPrefix(m[1], "http://"))
	}
	if strings.Contains(cmdLine, r.binary("shortener")+" ") || strings.HasSuffix(cmdLine, r.binary("shortener")) {
		if !strings.Contains(cmdLine, "-addr ") {
			p.listen = append(p.listen, "127.0.0.1:"+r.port("8080"))
		}
	}
	for _, a := range p.listen {
		for _, q := range r.procs {
			for _, b := range q.listen {
				if a == b {
					r.stop(q)
				}
			}
		}
	}
	cmd := exec.Command("bash", "-o", "pipefail", "-c", cmdLine)
	cmd.Dir, cmd.Env, cmd.Stdout, cmd.Stderr = r.work, r.env(), p.out, p.out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		r.t.Fatalf("%s: %v", line, err)
	}
	p.cmd = cmd
	go func() { p.err = cmd.Wait(); close(p.exited) }()
	r.procs = append(r.procs, p)
	return p
}

// stop ends p's process group with SIGTERM, and SIGKILL after stopBound.
func (r *runner) stop(p *proc) {
	select {
	case <-p.exited:
		return
	default:
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(stopBound):
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.exited
		r.t.Errorf("%s: did not stop within %v of SIGTERM\n%s", p.line, stopBound, p.out)
	}
}

func (r *runner) stopAll() {
	for i := len(r.procs) - 1; i >= 0; i-- {
		r.stop(r.procs[i])
	}
}

// curl runs a curl line until it succeeds with a 2xx or 3xx answer.
func (r *runner) curl(line, cmdLine string) {
	t := r.t
	if _, err := exec.LookPath("curl"); err != nil {
		t.Logf("skipped, curl not installed: %s", line)
		return
	}
	// Every curl also writes the answer's status to stderr.
	if err := os.WriteFile(filepath.Join(r.work, ".curlrc"), []byte("write-out = \"%{stderr}HTTP-STATUS %{http_code}\\n\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(clientBound)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		cmd := exec.CommandContext(ctx, "bash", "-o", "pipefail", "-c", cmdLine)
		var stdout, stderr bytes.Buffer
		cmd.Dir, cmd.Env, cmd.Stdout, cmd.Stderr = r.work, r.env(), &stdout, &stderr
		err := cmd.Run()
		cancel()
		status := 0
		sc := bufio.NewScanner(bytes.NewReader(stderr.Bytes()))
		for sc.Scan() {
			if s, ok := strings.CutPrefix(sc.Text(), "HTTP-STATUS "); ok {
				status, _ = strconv.Atoi(s)
			}
		}
		if err == nil && status >= 200 && status < 400 {
			if m := codeOut.FindSubmatch(stdout.Bytes()); m != nil {
				r.vars["code"] = string(m[1])
			}
			return
		}
		// Only a refused connection, a 404 or a 5xx is retried: a server
		// still starting, a follower not yet caught up, a cluster electing
		// a leader.
		if retry := status == 0 || status == 404 || status >= 500; !retry || time.Now().After(deadline) {
			t.Fatalf("%s\n(run as %s)\nno 2xx or 3xx answer within %v: status %d, %v\nstdout: %s\nstderr: %s", line, cmdLine, clientBound, status, err, stdout.Bytes(), stderr.Bytes())
		}
		time.Sleep(100 * time.Millisecond)
	}
}
