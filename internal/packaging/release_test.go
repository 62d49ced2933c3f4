package packaging

import (
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// The release config builds static kubeq-mcp binaries for the six targets, and the
// cross-build script (used where goreleaser is not installed) builds the same six.
func TestGoreleaserTargets(t *testing.T) {
	var cfg struct {
		Version int `yaml:"version"`
		Builds  []struct {
			Main    string   `yaml:"main"`
			Binary  string   `yaml:"binary"`
			Env     []string `yaml:"env"`
			Ldflags []string `yaml:"ldflags"`
			Goos    []string `yaml:"goos"`
			Goarch  []string `yaml:"goarch"`
		} `yaml:"builds"`
	}
	if err := yaml.Unmarshal([]byte(readFile(t, ".goreleaser.yaml")), &cfg); err != nil {
		t.Fatalf(".goreleaser.yaml: %v", err)
	}
	if cfg.Version != 2 || len(cfg.Builds) != 1 {
		t.Fatalf("want goreleaser config version 2 with one build, got version %d, %d builds", cfg.Version, len(cfg.Builds))
	}
	b := cfg.Builds[0]
	if b.Main != "." || b.Binary != "kubeq-mcp" || !slices.Contains(b.Env, "CGO_ENABLED=0") {
		t.Errorf("build main %q binary %q env %v; want ., kubeq-mcp, CGO_ENABLED=0", b.Main, b.Binary, b.Env)
	}
	if !strings.Contains(strings.Join(b.Ldflags, " "), "-X main.version=") {
		t.Errorf("ldflags %v do not set main.version", b.Ldflags)
	}
	var release []string
	for _, goos := range b.Goos {
		for _, goarch := range b.Goarch {
			release = append(release, goos+"/"+goarch)
		}
	}
	want := []string{"darwin/amd64", "darwin/arm64", "linux/amd64", "linux/arm64", "windows/amd64", "windows/arm64"}
	sort.Strings(release)
	if !slices.Equal(release, want) {
		t.Errorf("goreleaser targets %v, want %v", release, want)
	}
	m := regexp.MustCompile(`(?m)^targets=\(([^)]*)\)`).FindStringSubmatch(readFile(t, "scripts/cross-build.sh"))
	if m == nil {
		t.Fatal("scripts/cross-build.sh has no targets=(...) line")
	}
	script := strings.Fields(m[1])
	sort.Strings(script)
	if !slices.Equal(script, want) {
		t.Errorf("cross-build.sh targets %v, want %v", script, want)
	}
}
