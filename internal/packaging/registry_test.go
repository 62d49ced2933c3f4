package packaging

import (
	"regexp"
	"strings"
	"testing"
)

type serverJSON struct {
	Schema      string `json:"$schema"`
	Name        string `json:"name"`
	Title       string `json:"title"`
	Description string `json:"description"`
	Version     string `json:"version"`
	Repository  struct {
		URL    string `json:"url"`
		Source string `json:"source"`
	} `json:"repository"`
	WebsiteURL string `json:"websiteUrl"`
	Packages   []struct {
		RegistryType string `json:"registryType"`
		Identifier   string `json:"identifier"`
		Version      string `json:"version"`
		Transport    struct {
			Type string `json:"type"`
			URL  string `json:"url"`
		} `json:"transport"`
		PackageArguments []struct {
			Type  string `json:"type"`
			Name  string `json:"name"`
			Value string `json:"value"`
		} `json:"packageArguments"`
		EnvironmentVariables []struct {
			Name        string `json:"name"`
			Description string `json:"description"`
			Default     string `json:"default"`
			IsRequired  bool   `json:"isRequired"`
			IsSecret    bool   `json:"isSecret"`
		} `json:"environmentVariables"`
	} `json:"packages"`
}

// server.json follows the MCP registry's rules (schema 2025-12-11 and the official registry's
// ownership checks) and agrees with go.mod, the Dockerfile and the mcpb manifest.
func TestServerJSON(t *testing.T) {
	var s serverJSON
	if err := remarshalFile(t, "server.json", &s); err != nil {
		t.Fatalf("server.json has a field the registry schema does not: %v", err)
	}
	if !strings.HasSuffix(s.Schema, "/schemas/2025-12-11/server.schema.json") {
		t.Errorf("$schema %q, want the 2025-12-11 server schema", s.Schema)
	}
	if !regexp.MustCompile(`^[a-zA-Z0-9.-]+/[a-zA-Z0-9._-]+$`).MatchString(s.Name) {
		t.Errorf("name %q is not reverse-DNS namespace/name", s.Name)
	}
	if n := len(s.Description); n < 1 || n > 100 {
		t.Errorf("description is %d characters, the registry allows 1 to 100", n)
	}
	if s.Version == "" || s.Version == "latest" {
		t.Errorf("version %q must be a specific version", s.Version)
	}
	mod := modulePath(t)
	// A Go package proves ownership by its module owner matching the io.github.<owner> namespace.
	owner := strings.Split(strings.TrimPrefix(mod, "github.com/"), "/")[0]
	if want := "io.github." + owner + "/"; !strings.HasPrefix(s.Name, want) {
		t.Errorf("name %q must start with %q to own module %s", s.Name, want, mod)
	}
	if s.Repository.URL != "https://"+mod || s.Repository.Source != "github" {
		t.Errorf("repository %+v, want https://%s on github", s.Repository, mod)
	}
	seen := map[string]bool{}
	for _, p := range s.Packages {
		where := "package " + p.RegistryType
		seen[p.RegistryType] = true
		switch p.RegistryType {
		case "go":
			if p.Identifier != mod || p.Version != "v"+s.Version {
				t.Errorf("%s: %s@%s, want %s@v%s", where, p.Identifier, p.Version, mod, s.Version)
			}
		case "oci":
			if !strings.HasSuffix(p.Identifier, ":"+s.Version) {
				t.Errorf("%s: image %q is not tagged with version %s", where, p.Identifier, s.Version)
			}
		default:
			t.Errorf("%s: unexpected registryType", where)
		}
		if p.Transport.Type != "stdio" {
			t.Errorf("%s: transport %q, want stdio (a registry client starts the package itself)", where, p.Transport.Type)
		}
		var args []string
		for _, a := range p.PackageArguments {
			if a.Type != "named" {
				t.Errorf("%s: argument %+v is not named", where, a)
			}
			args = append(args, a.Name, a.Value)
		}
		checkArgs(t, where, args)
		for _, e := range p.EnvironmentVariables {
			if !knownEnv[e.Name] {
				t.Errorf("%s: unknown environment variable %q", where, e.Name)
			}
			if strings.Contains(e.Name, "KEY") || strings.Contains(e.Name, "TOKEN") {
				if !e.IsSecret {
					t.Errorf("%s: %s must be marked isSecret", where, e.Name)
				}
			}
		}
	}
	if !seen["go"] || !seen["oci"] {
		t.Errorf("packages %v, want a go module and an oci image", seen)
	}
	label := regexp.MustCompile(`(?m)^LABEL io\.modelcontextprotocol\.server\.name="([^"]+)"`).FindStringSubmatch(readFile(t, "Dockerfile"))
	if label == nil || label[1] != s.Name {
		t.Errorf("Dockerfile label io.modelcontextprotocol.server.name = %v, want %q (the registry checks it)", label, s.Name)
	}
}

func remarshalFile(t *testing.T, rel string, out any) error {
	t.Helper()
	var raw any
	readJSON(t, rel, &raw)
	return remarshal(raw, out)
}
