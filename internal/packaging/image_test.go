package packaging

import (
	"os/exec"
	"path"
	"regexp"
	"strings"
	"testing"
)

// The Dockerfile builds a static binary and runs it as non-root over HTTP, on the port and
// user the Kubernetes manifests expect.
func TestDockerfile(t *testing.T) {
	df := readFile(t, "Dockerfile")
	for _, want := range []string{
		`(?m)^FROM golang:1\.26 AS build$`,
		`CGO_ENABLED=0 go build `,
		`(?m)^FROM gcr\.io/distroless/static-debian12:nonroot$`,
		`(?m)^USER 65532:65532$`,
		`(?m)^EXPOSE 8080$`,
		`(?m)^ENTRYPOINT \["/usr/local/bin/kubeq-mcp"\]$`,
		`(?m)^CMD \["--transport", "http", "--addr", "0\.0\.0\.0:8080"\]$`,
	} {
		if !regexp.MustCompile(want).MatchString(df) {
			t.Errorf("Dockerfile does not match %s", want)
		}
	}
	checkArgs(t, "Dockerfile CMD", []string{"--transport", "http", "--addr", "0.0.0.0:8080"})
}

// dockerignorePatterns are the exclusion patterns of .dockerignore.
func dockerignorePatterns(t *testing.T) []string {
	t.Helper()
	var pats []string
	for _, line := range strings.Split(readFile(t, ".dockerignore"), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if strings.HasPrefix(line, "!") {
			t.Fatalf(".dockerignore: negations are not supported by this check: %q", line)
		}
		pats = append(pats, strings.Trim(line, "/"))
	}
	return pats
}

// ignored reports whether .dockerignore drops rel (slash-separated, relative to the context):
// a pattern matches the path or one of its parent directories; "**/" matches any depth.
func ignored(pats []string, rel string) bool {
	parts := strings.Split(rel, "/")
	for i := range parts {
		prefix := strings.Join(parts[:i+1], "/")
		for _, p := range pats {
			if ok, _ := path.Match(p, prefix); ok {
				return true
			}
			if tail, found := strings.CutPrefix(p, "**/"); found {
				if ok, _ := path.Match(tail, parts[i]); ok {
					return true
				}
			}
		}
	}
	return false
}

// The build context leaves out history, dependencies of the JS tests and build output, and
// keeps every file the binary is built from.
func TestDockerignore(t *testing.T) {
	pats := dockerignorePatterns(t)
	for _, p := range []string{".git", "node_modules/x", "e2e/node_modules/x", "dist/kubeq-mcp", "kubeq-mcp"} {
		if !ignored(pats, p) {
			t.Errorf(".dockerignore keeps %s in the build context", p)
		}
	}
	root := repoRoot(t)
	cmd := exec.Command("go", "list", "-deps", "-f", `{{if not .Standard}}{{.Dir}}{{range .GoFiles}} {{.}}{{end}}{{range .EmbedFiles}} {{.}}{{end}}{{end}}`, ".")
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go list of the root package: %v\n%s", err, out)
	}
	needed := []string{"go.mod", "go.sum"}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		if len(fields) == 0 || !strings.HasPrefix(fields[0], root) {
			continue // a dependency from the module cache
		}
		dir := strings.TrimPrefix(strings.TrimPrefix(fields[0], root), "/")
		for _, f := range fields[1:] {
			needed = append(needed, path.Join(dir, f))
		}
	}
	if len(needed) < 4 {
		t.Fatalf("go list found only %v", needed)
	}
	for _, f := range needed {
		if ignored(pats, f) {
			t.Errorf(".dockerignore drops %s, which the build needs", f)
		}
	}
}
