package packaging

import (
	"regexp"
	"strings"
	"testing"
)

type mcpbManifest struct {
	ManifestVersion string `json:"manifest_version"`
	Name            string `json:"name"`
	Version         string `json:"version"`
	LongDescription string `json:"long_description"`
	Compatibility   struct {
		Platforms []string `json:"platforms"`
	} `json:"compatibility"`
	Server struct {
		Type       string `json:"type"`
		EntryPoint string `json:"entry_point"`
		MCPConfig  struct {
			Command           string                       `json:"command"`
			Args              []string                     `json:"args"`
			Env               map[string]string            `json:"env"`
			PlatformOverrides map[string]map[string]string `json:"platform_overrides"`
		} `json:"mcp_config"`
	} `json:"server"`
	Tools []struct {
		Name string `json:"name"`
	} `json:"tools"`
	UserConfig map[string]struct {
		Type      string `json:"type"`
		Sensitive bool   `json:"sensitive"`
		Default   any    `json:"default"`
	} `json:"user_config"`
}

func readManifest(t *testing.T) mcpbManifest {
	t.Helper()
	var m mcpbManifest
	readJSON(t, "mcpb/manifest.json", &m)
	return m
}

// The Claude Desktop bundle runs the bundled binary with real flags, asks for the backend URL
// and a sensitive API key, and agrees with server.json on the version.
func TestMCPBManifest(t *testing.T) {
	m := readManifest(t)
	if m.ManifestVersion != "0.3" || m.Server.Type != "binary" {
		t.Errorf("manifest_version %q, server.type %q; want 0.3 and binary", m.ManifestVersion, m.Server.Type)
	}
	cfg := m.Server.MCPConfig
	if cfg.Command != "${__dirname}/"+m.Server.EntryPoint {
		t.Errorf("command %q does not run entry_point %q", cfg.Command, m.Server.EntryPoint)
	}
	checkCommand(t, "mcpb command", cfg.Command)
	if win := cfg.PlatformOverrides["win32"]["command"]; win != cfg.Command+".exe" {
		t.Errorf("win32 command %q, want %q", win, cfg.Command+".exe")
	}
	checkArgs(t, "mcpb args", cfg.Args)
	checkEnvNames(t, "mcpb env", cfg.Env)
	if cfg.Env["KUBE_Q_URL"] == "" || cfg.Env["KUBE_Q_API_KEY"] == "" {
		t.Errorf("env %v must set KUBE_Q_URL and KUBE_Q_API_KEY from user_config", cfg.Env)
	}
	// Every ${user_config.X} must name a declared option.
	refs := regexp.MustCompile(`\$\{user_config\.([a-z_]+)\}`)
	all := strings.Join(cfg.Args, " ")
	for _, v := range cfg.Env {
		all += " " + v
	}
	for _, r := range refs.FindAllStringSubmatch(all, -1) {
		if _, ok := m.UserConfig[r[1]]; !ok {
			t.Errorf("mcp_config uses ${user_config.%s}, which user_config does not declare", r[1])
		}
	}
	key := strings.TrimSuffix(strings.TrimPrefix(cfg.Env["KUBE_Q_API_KEY"], "${user_config."), "}")
	if uc, ok := m.UserConfig[key]; !ok || !uc.Sensitive || uc.Type != "string" {
		t.Errorf("the API key option %q must be a sensitive string, got %+v", key, uc)
	}
	var s serverJSON
	readJSON(t, "server.json", &s)
	if m.Version != s.Version {
		t.Errorf("mcpb version %q and server.json version %q differ", m.Version, s.Version)
	}
}

// substitute fills a manifest value the way the host app would, with the user_config defaults
// and the bundle directory.
func (m mcpbManifest) substitute(v, dirname string) string {
	v = strings.ReplaceAll(v, "${__dirname}", dirname)
	for k, uc := range m.UserConfig {
		def := ""
		switch d := uc.Default.(type) {
		case string:
			def = d
		case bool:
			def = map[bool]string{true: "true", false: "false"}[d]
		}
		v = strings.ReplaceAll(v, "${user_config."+k+"}", def)
	}
	return v
}
