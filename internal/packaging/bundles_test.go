package packaging

import (
	"archive/zip"
	"debug/elf"
	"debug/macho"
	"debug/pe"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/kubeq-mcp/kubeq-mcp/internal/bundle"
)

// Each per-platform bundle manifest claims only its own platform, runs the one binary the bundle
// holds, and otherwise says what the template says.
func TestBundleManifestPerPlatform(t *testing.T) {
	template := []byte(readFile(t, "mcpb/manifest.json"))
	var base mcpbManifest
	if err := json.Unmarshal(template, &base); err != nil {
		t.Fatal(err)
	}
	for _, tg := range bundle.Targets {
		goos, goarch := tg[0], tg[1]
		t.Run(goos+"/"+goarch, func(t *testing.T) {
			b, err := bundle.Manifest(template, goos, goarch)
			if err != nil {
				t.Fatal(err)
			}
			var m mcpbManifest
			if err := json.Unmarshal(b, &m); err != nil {
				t.Fatal(err)
			}
			checkBundleManifest(t, m, goos, goarch)
			if !reflect.DeepEqual(m.Tools, base.Tools) || !reflect.DeepEqual(m.UserConfig, base.UserConfig) ||
				!slices.Equal(m.Server.MCPConfig.Args, base.Server.MCPConfig.Args) ||
				!reflect.DeepEqual(m.Server.MCPConfig.Env, base.Server.MCPConfig.Env) || m.Version != base.Version {
				t.Errorf("the %s/%s manifest differs from the template beyond platform, entry point and description", goos, goarch)
			}
		})
	}
}

func checkBundleManifest(t *testing.T, m mcpbManifest, goos, goarch string) {
	t.Helper()
	platform, err := bundle.Platform(goos)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(m.Compatibility.Platforms, []string{platform}) {
		t.Errorf("compatibility.platforms %v, want only [%s]", m.Compatibility.Platforms, platform)
	}
	if want := bundle.EntryPoint(goos); m.Server.EntryPoint != want {
		t.Errorf("entry_point %q, want %q", m.Server.EntryPoint, want)
	}
	if m.Server.MCPConfig.Command != "${__dirname}/"+m.Server.EntryPoint {
		t.Errorf("command %q does not run entry_point %q", m.Server.MCPConfig.Command, m.Server.EntryPoint)
	}
	if len(m.Server.MCPConfig.PlatformOverrides) != 0 {
		t.Errorf("platform_overrides %v in a bundle for one platform", m.Server.MCPConfig.PlatformOverrides)
	}
	if !strings.Contains(m.LongDescription, "("+goos+"/"+goarch+")") {
		t.Errorf("long_description does not name %s/%s (the format has no architecture field)", goos, goarch)
	}
}

// The packed bundles, unpacked: the manifest is the bundle's own, the entry point exists, is
// executable and is a binary for the bundle's platform and architecture; the host's bundle is
// started as Claude Desktop would start it and lists the tools.
//
// With KUBEQ_MCPB_DIR set (e2e/run-bundles.sh), the six bundles `mcpb pack` made there are
// checked; without it, the host's bundle is packed here in the same layout.
func TestPackedBundles(t *testing.T) {
	var paths []string
	if dir := os.Getenv("KUBEQ_MCPB_DIR"); dir != "" {
		for _, tg := range bundle.Targets {
			paths = append(paths, filepath.Join(dir, bundle.FileName(tg[0], tg[1])))
		}
	} else {
		paths = []string{packHostBundle(t)}
	}
	wantTools := manifestToolNames(t)
	for _, path := range paths {
		goos, goarch := bundleTarget(t, path)
		t.Run(goos+"/"+goarch, func(t *testing.T) {
			dir := unpack(t, path)
			var m mcpbManifest
			b, err := os.ReadFile(filepath.Join(dir, "manifest.json"))
			if err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(b, &m); err != nil {
				t.Fatalf("manifest.json: %v", err)
			}
			checkBundleManifest(t, m, goos, goarch)
			entry := filepath.Join(dir, filepath.FromSlash(m.Server.EntryPoint))
			fi, err := os.Stat(entry)
			if err != nil {
				t.Fatalf("entry point %s is not in the bundle: %v", m.Server.EntryPoint, err)
			}
			if goos != "windows" && fi.Mode()&0o111 == 0 {
				t.Errorf("entry point %s is not executable (%v)", m.Server.EntryPoint, fi.Mode())
			}
			checkBinaryTarget(t, entry, goos, goarch)
			if goos != runtime.GOOS || goarch != runtime.GOARCH {
				return
			}
			l := launch{source: path, command: m.substitute(m.Server.MCPConfig.Command, dir), env: map[string]string{}}
			for _, a := range m.Server.MCPConfig.Args {
				l.args = append(l.args, m.substitute(a, dir))
			}
			for k, v := range m.Server.MCPConfig.Env {
				l.env[k] = m.substitute(v, dir)
			}
			if got := stdioToolNames(t, l.command, l); !slices.Equal(got, wantTools) {
				t.Errorf("tools %v, want %v", got, wantTools)
			}
		})
	}
}

// bundleTarget reads GOOS and GOARCH from a bundle's file name.
func bundleTarget(t *testing.T, path string) (string, string) {
	t.Helper()
	for _, tg := range bundle.Targets {
		if filepath.Base(path) == bundle.FileName(tg[0], tg[1]) {
			return tg[0], tg[1]
		}
	}
	t.Fatalf("%s is not named like a bundle of a release target", path)
	return "", ""
}

// packHostBundle writes the host's bundle as scripts/pack-mcpb.sh lays it out.
func packHostBundle(t *testing.T) string {
	t.Helper()
	manifest, err := bundle.Manifest([]byte(readFile(t, "mcpb/manifest.json")), runtime.GOOS, runtime.GOARCH)
	if err != nil {
		t.Fatal(err)
	}
	bin, err := os.ReadFile(buildBinary(t))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), bundle.FileName(runtime.GOOS, runtime.GOARCH))
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	zw := zip.NewWriter(f)
	for _, e := range []struct {
		name string
		mode os.FileMode
		data []byte
	}{
		{"manifest.json", 0o644, manifest},
		{"LICENSE", 0o644, []byte(readFile(t, "LICENSE"))},
		{bundle.EntryPoint(runtime.GOOS), 0o755, bin},
	} {
		h := &zip.FileHeader{Name: e.name, Method: zip.Deflate}
		h.SetMode(e.mode)
		w, err := zw.CreateHeader(h)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(e.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// unpack extracts a bundle into a temporary directory, keeping file modes.
func unpack(t *testing.T, path string) string {
	t.Helper()
	zr, err := zip.OpenReader(path)
	if err != nil {
		t.Fatalf("open bundle: %v", err)
	}
	defer zr.Close()
	dir := t.TempDir()
	for _, zf := range zr.File {
		if zf.FileInfo().IsDir() {
			continue
		}
		dst := filepath.Join(dir, filepath.FromSlash(zf.Name))
		if !strings.HasPrefix(dst, dir+string(filepath.Separator)) {
			t.Fatalf("bundle entry %q escapes the directory", zf.Name)
		}
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			t.Fatal(err)
		}
		r, err := zf.Open()
		if err != nil {
			t.Fatal(err)
		}
		w, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, zf.Mode().Perm())
		if err != nil {
			t.Fatal(err)
		}
		_, err = io.Copy(w, r)
		r.Close()
		if cerr := w.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// checkBinaryTarget reads the executable's header: the right format and CPU for goos/goarch.
func checkBinaryTarget(t *testing.T, path, goos, goarch string) {
	t.Helper()
	switch goos {
	case "linux":
		f, err := elf.Open(path)
		if err != nil {
			t.Fatalf("not an ELF executable for linux: %v", err)
		}
		defer f.Close()
		want := map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}[goarch]
		if f.Machine != want {
			t.Errorf("ELF machine %v, want %v for %s", f.Machine, want, goarch)
		}
	case "darwin":
		f, err := macho.Open(path)
		if err != nil {
			t.Fatalf("not a Mach-O executable for darwin: %v", err)
		}
		defer f.Close()
		want := map[string]macho.Cpu{"amd64": macho.CpuAmd64, "arm64": macho.CpuArm64}[goarch]
		if f.Cpu != want {
			t.Errorf("Mach-O CPU %v, want %v for %s", f.Cpu, want, goarch)
		}
	case "windows":
		f, err := pe.Open(path)
		if err != nil {
			t.Fatalf("not a PE executable for windows: %v", err)
		}
		defer f.Close()
		want := map[string]uint16{"amd64": pe.IMAGE_FILE_MACHINE_AMD64, "arm64": pe.IMAGE_FILE_MACHINE_ARM64}[goarch]
		if f.FileHeader.Machine != want {
			t.Errorf("PE machine %#x, want %#x for %s", f.FileHeader.Machine, want, goarch)
		}
	default:
		t.Fatalf("no header check for %s", goos)
	}
}
