package packaging

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// launch is a stdio server entry of a client config: the process the client starts.
type launch struct {
	source  string
	command string
	args    []string
	env     map[string]string
}

// remote is a streamable-HTTP server entry of a client config.
type remote struct {
	source  string
	url     string
	headers map[string]string
}

// serverEntry is the union of the stdio and HTTP entry shapes the clients use.
type serverEntry struct {
	Type    string            `json:"type"`
	Command string            `json:"command"`
	Args    []string          `json:"args"`
	Env     map[string]string `json:"env"`
	URL     string            `json:"url"`
	Headers map[string]string `json:"headers"`
}

// exampleFiles lists docs/examples, sorted; there must be some.
func exampleFiles(t *testing.T) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(repoRoot(t), "docs", "examples"))
	if err != nil {
		t.Fatalf("read docs/examples: %v", err)
	}
	var names []string
	for _, e := range entries {
		if !e.IsDir() {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	if len(names) == 0 {
		t.Fatal("docs/examples is empty")
	}
	return names
}

// exampleServers reads every client config in docs/examples, checking the top-level key each
// client expects: VS Code uses "servers" and an explicit "type"; the others use "mcpServers".
func exampleServers(t *testing.T) ([]launch, []remote) {
	t.Helper()
	var launches []launch
	var remotes []remote
	for _, name := range exampleFiles(t) {
		rel := "docs/examples/" + name
		switch filepath.Ext(name) {
		case ".json":
		case ".sh":
			l, r := claudeCodeCommands(t, rel)
			launches, remotes = append(launches, l...), append(remotes, r...)
			continue
		default:
			t.Errorf("%s: unexpected file type in docs/examples", rel)
			continue
		}
		var doc map[string]map[string]serverEntry
		var raw map[string]any
		readJSON(t, rel, &raw)
		key := "mcpServers"
		if strings.HasPrefix(name, "vscode") {
			key = "servers"
		}
		if _, ok := raw[key]; !ok {
			t.Errorf("%s: no %q object", rel, key)
			continue
		}
		onlyServers := map[string]any{key: raw[key]}
		if err := remarshal(onlyServers, &doc); err != nil {
			t.Errorf("%s: %q entries have the wrong shape: %v", rel, key, err)
			continue
		}
		for id, e := range doc[key] {
			where := rel + " " + id
			if key == "servers" && e.Type != "stdio" && e.Type != "http" {
				t.Errorf("%s: VS Code needs \"type\" stdio or http, got %q", where, e.Type)
			}
			switch {
			case e.Command != "" && e.URL == "":
				launches = append(launches, launch{where, e.Command, e.Args, e.Env})
			case e.URL != "" && e.Command == "":
				remotes = append(remotes, remote{where, e.URL, e.Headers})
			default:
				t.Errorf("%s: needs exactly one of command or url", where)
			}
		}
	}
	return launches, remotes
}

// claudeCodeCommands parses the `claude mcp add` lines of a shell example: a name, options,
// then for stdio "--" and the command, or for http the URL. --env and --header take several
// values in Claude Code 2.1 and later and swallow a following name (anthropics/claude-code
// #23365), so they must not come before the name.
func claudeCodeCommands(t *testing.T, rel string) ([]launch, []remote) {
	t.Helper()
	var launches []launch
	var remotes []remote
	for n, line := range strings.Split(readFile(t, rel), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		where := rel + ":" + itoa(n+1)
		words := shellWords(line)
		if len(words) < 4 || strings.Join(words[:3], " ") != "claude mcp add" {
			t.Errorf("%s: not a `claude mcp add` command: %q", where, line)
			continue
		}
		transport, env, headers := "stdio", map[string]string{}, map[string]string{}
		var positional, command []string
		for rest := words[3:]; len(rest) > 0; {
			w := rest[0]
			switch {
			case w == "--":
				command, rest = rest[1:], nil
				continue
			case !strings.HasPrefix(w, "--"):
				positional, rest = append(positional, w), rest[1:]
				continue
			case len(rest) < 2:
				t.Errorf("%s: option %q has no value", where, w)
				rest = nil
				continue
			}
			val := rest[1]
			rest = rest[2:]
			if (w == "--env" || w == "--header") && len(positional) == 0 && len(rest) > 0 && !strings.HasPrefix(rest[0], "-") {
				t.Errorf("%s: %s before the server name swallows the name; write the name first", where, w)
			}
			switch w {
			case "--transport":
				transport = val
			case "--env":
				k, v, _ := strings.Cut(val, "=")
				env[k] = v
			case "--header":
				k, v, _ := strings.Cut(val, ":")
				headers[k] = strings.TrimSpace(v)
			case "--scope":
			default:
				t.Errorf("%s: unknown claude mcp add option %q", where, w)
			}
		}
		switch transport {
		case "stdio":
			if len(positional) != 1 || len(command) == 0 {
				t.Errorf("%s: a stdio server needs a name, then -- and the command", where)
				continue
			}
			launches = append(launches, launch{where, command[0], command[1:], env})
		case "http":
			if len(positional) != 2 || command != nil {
				t.Errorf("%s: an http server needs a name and one URL, got %q", where, positional)
				continue
			}
			remotes = append(remotes, remote{where, positional[1], headers})
		default:
			t.Errorf("%s: transport %q", where, transport)
		}
	}
	return launches, remotes
}

// shellWords splits a command line on spaces, keeping single- and double-quoted words together
// (without the quotes; nothing is expanded).
func shellWords(line string) []string {
	var words []string
	var cur strings.Builder
	var quote rune // the open quote, or 0
	inWord := false
	for _, r := range line {
		switch {
		case quote == 0 && (r == '"' || r == '\''):
			quote, inWord = r, true
		case r == quote:
			quote = 0
		case r == ' ' && quote == 0:
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
			}
			inWord = false
		default:
			cur.WriteRune(r)
			inWord = true
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words
}
