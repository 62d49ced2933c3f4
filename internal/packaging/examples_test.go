package packaging

import (
	"encoding/json"
	"net/url"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
)

// Every stdio snippet starts kubeq-mcp with flags and environment variables it has.
func TestExampleLaunchesUseRealFlags(t *testing.T) {
	launches, _ := exampleServers(t)
	if len(launches) < 5 {
		t.Fatalf("found %d stdio snippets, want at least 5 (Claude Desktop, Claude Code, VS Code, Cursor)", len(launches))
	}
	for _, l := range launches {
		checkCommand(t, l.source, l.command)
		checkArgs(t, l.source, l.args)
		checkEnvNames(t, l.source, l.env)
	}
}

// Every HTTP snippet points at /mcp on the default address and sends a bearer token.
func TestExampleRemotesUseEndpointAndBearer(t *testing.T) {
	_, remotes := exampleServers(t)
	if len(remotes) < 4 {
		t.Fatalf("found %d HTTP snippets, want at least 4 (Claude Code, VS Code, Cursor, generic)", len(remotes))
	}
	for _, r := range remotes {
		u, err := url.Parse(r.url)
		if err != nil {
			t.Errorf("%s: url %q: %v", r.source, r.url, err)
			continue
		}
		if u.Path != "/mcp" || u.Port() != "8080" {
			t.Errorf("%s: url %q, want the endpoint /mcp on port 8080", r.source, r.url)
		}
		if auth := r.headers["Authorization"]; !strings.HasPrefix(auth, "Bearer ") || len(auth) <= len("Bearer ") {
			t.Errorf("%s: Authorization header %q, want \"Bearer <token>\"", r.source, auth)
		}
	}
}

// The Windows snippet gives the full path to the .exe and no npx or cmd wrapper.
func TestWindowsSnippetUsesFullExePath(t *testing.T) {
	var cfg struct {
		MCPServers map[string]serverEntry `json:"mcpServers"`
	}
	readJSON(t, "docs/examples/claude-desktop-windows.json", &cfg)
	for id, e := range cfg.MCPServers {
		if !regexp.MustCompile(`^[A-Za-z]:\\.*\\kubeq-mcp\.exe$`).MatchString(e.Command) {
			t.Errorf("%s: command %q is not a full Windows path to kubeq-mcp.exe", id, e.Command)
		}
	}
	if len(cfg.MCPServers) == 0 {
		t.Fatal("no servers in the Windows snippet")
	}
}

// docs/clients.md shows each example file verbatim, and every JSON block in it is one of them,
// so the page and the tested files cannot drift apart.
func TestClientsDocEmbedsExamples(t *testing.T) {
	doc := readFile(t, "docs/clients.md")
	files := map[string]string{}
	for _, name := range exampleFiles(t) {
		content := strings.TrimRight(readFile(t, "docs/examples/"+name), "\n")
		files[name] = content
		lang := map[string]string{".json": "json", ".sh": "sh"}[filepath.Ext(name)]
		if !strings.Contains(doc, "```"+lang+"\n"+content+"\n```") {
			t.Errorf("docs/clients.md does not show docs/examples/%s verbatim in a ```%s block", name, lang)
		}
	}
	blocks := regexp.MustCompile("(?s)```json\n(.*?)\n```").FindAllStringSubmatch(doc, -1)
	if len(blocks) == 0 {
		t.Fatal("docs/clients.md has no JSON blocks")
	}
	for i, b := range blocks {
		var v any
		if err := json.Unmarshal([]byte(b[1]), &v); err != nil {
			t.Errorf("JSON block %d of docs/clients.md does not parse: %v", i+1, err)
			continue
		}
		if !matchesAnyJSON(v, files) {
			t.Errorf("JSON block %d of docs/clients.md is not one of docs/examples/*.json", i+1)
		}
	}
}

func matchesAnyJSON(v any, files map[string]string) bool {
	for name, content := range files {
		var w any
		if filepath.Ext(name) == ".json" && json.Unmarshal([]byte(content), &w) == nil && reflect.DeepEqual(v, w) {
			return true
		}
	}
	return false
}
