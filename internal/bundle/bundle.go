// Package bundle writes the manifest of one per-platform Claude Desktop
// bundle (.mcpb) from the template mcpb/manifest.json: each bundle holds
// one binary, so it claims only its own platform and names that binary as
// its entry point. The manifest format (0.3) has no field for the CPU
// architecture (compatibility is a strict object of claude_desktop,
// platforms and runtimes), so the architecture is said in the bundle's
// file name and its long description.
package bundle

import (
	"encoding/json"
	"fmt"
)

// Targets are the platforms bundles are packed for: the release targets.
var Targets = [][2]string{
	{"linux", "amd64"}, {"linux", "arm64"},
	{"darwin", "amd64"}, {"darwin", "arm64"},
	{"windows", "amd64"}, {"windows", "arm64"},
}

// Platform is the manifest's name for goos.
func Platform(goos string) (string, error) {
	switch goos {
	case "darwin", "linux":
		return goos, nil
	case "windows":
		return "win32", nil
	}
	return "", fmt.Errorf("bundle: no MCPB platform for GOOS %q", goos)
}

// EntryPoint is where the binary sits in the bundle for goos.
func EntryPoint(goos string) string {
	if goos == "windows" {
		return "server/kubeq-mcp.exe"
	}
	return "server/kubeq-mcp"
}

// FileName is the bundle's file name for goos/goarch.
func FileName(goos, goarch string) string {
	return "kubeq-mcp_" + goos + "_" + goarch + ".mcpb"
}

var osNames = map[string]string{"darwin": "macOS", "linux": "Linux", "windows": "Windows"}

// Manifest returns the template with the bundle's own platform, entry
// point and command, and no platform overrides (there is one binary).
func Manifest(template []byte, goos, goarch string) ([]byte, error) {
	platform, err := Platform(goos)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if err := json.Unmarshal(template, &m); err != nil {
		return nil, fmt.Errorf("bundle: template: %w", err)
	}
	server, ok := m["server"].(map[string]any)
	if !ok {
		return nil, fmt.Errorf("bundle: template has no server object")
	}
	cfg, ok := server["mcp_config"].(map[string]any)
	if !ok {
		return nil, fmt.Errorf("bundle: template has no server.mcp_config object")
	}
	entry := EntryPoint(goos)
	server["entry_point"] = entry
	cfg["command"] = "${__dirname}/" + entry
	delete(cfg, "platform_overrides")
	compat, _ := m["compatibility"].(map[string]any)
	if compat == nil {
		compat = map[string]any{}
		m["compatibility"] = compat
	}
	compat["platforms"] = []string{platform}
	long, _ := m["long_description"].(string)
	m["long_description"] = fmt.Sprintf("%s\n\nThis bundle is for %s on %s (%s/%s).", long, osNames[goos], goarch, goos, goarch)
	out, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("bundle: %w", err)
	}
	return append(out, '\n'), nil
}
