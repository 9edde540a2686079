package kubeenv

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
)

// Versions of the binaries Start runs. KubernetesVersion stays on the minor of the client-go
// in our go.mod so that the server speaks exactly what our clients expect.
const (
	KubernetesVersion = "v1.37.2"
	EtcdVersion       = "v3.6.5"
)

// Binary names inside an assets directory; the directory also works as KUBEBUILDER_ASSETS.
const (
	binEtcd              = "etcd"
	binAPIServer         = "kube-apiserver"
	binControllerManager = "kube-controller-manager"
)

var allBinaries = []string{binEtcd, binAPIServer, binControllerManager}

// AssetsDir is where the binaries of this version set are cached:
// ${KUBEENV_CACHE:-$HOME/.cache/otelcol-kestrel/kubeenv}/k8s-<ver>-etcd-<ver>.
func AssetsDir() (string, error) {
	root := os.Getenv("KUBEENV_CACHE")
	if root == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("kubeenv: no KUBEENV_CACHE and no home directory: %w", err)
		}
		root = filepath.Join(home, ".cache", "otelcol-kestrel", "kubeenv")
	}
	return filepath.Join(root, "k8s-"+KubernetesVersion+"-etcd-"+EtcdVersion), nil
}

// EnsureBinaries returns the assets directory, building etcd, kube-apiserver and
// kube-controller-manager from the Go module proxy first if they are not cached yet.
// The build goes to a temporary directory that is renamed into place, under a file lock,
// so concurrent callers (test packages run in parallel) build once and never see a
// half-written binary. The go tool's output goes to log (and to build.log in the cache).
func EnsureBinaries(ctx context.Context, log io.Writer) (string, error) {
	out, err := AssetsDir()
	if err != nil {
		return "", err
	}
	if haveBinaries(out, allBinaries...) {
		return out, nil
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o750); err != nil {
		return "", fmt.Errorf("kubeenv: %w", err)
	}
	lock, err := os.OpenFile(out+".lock", os.O_CREATE|os.O_RDWR, 0o600) //nolint:gosec // in the kubeenv cache (KUBEENV_CACHE or ~/.cache)
	if err != nil {
		return "", fmt.Errorf("kubeenv: %w", err)
	}
	defer lock.Close()
	// The kernel drops the lock when the holder dies, so a killed build never wedges later ones.
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return "", fmt.Errorf("kubeenv: locking %s: %w", lock.Name(), err)
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN) //nolint:errcheck // closing the file unlocks too
	if haveBinaries(out, allBinaries...) {
		return out, nil // another process built them while we waited
	}
	if err := build(ctx, out, log); err != nil {
		return "", err
	}
	return out, nil
}

func haveBinaries(dir string, names ...string) bool {
	for _, b := range names {
		st, err := os.Stat(filepath.Join(dir, b))
		if err != nil || !st.Mode().IsRegular() || st.Mode().Perm()&0o111 == 0 {
			return false
		}
	}
	return true
}

func build(ctx context.Context, out string, log io.Writer) error {
	tmp := out + ".tmp"
	if err := os.RemoveAll(tmp); err != nil { // leftovers of an interrupted build
		return fmt.Errorf("kubeenv: %w", err)
	}
	if err := os.MkdirAll(tmp, 0o750); err != nil {
		return fmt.Errorf("kubeenv: %w", err)
	}
	logFile, err := os.Create(filepath.Join(tmp, "build.log")) //nolint:gosec // in the kubeenv cache (KUBEENV_CACHE or ~/.cache)
	if err != nil {
		return fmt.Errorf("kubeenv: %w", err)
	}
	defer logFile.Close()
	if log == nil {
		log = io.Discard
	}
	b := &builder{ctx: ctx, log: io.MultiWriter(log, logFile)}
	work, err := os.MkdirTemp("", "kubeenv-build-")
	if err != nil {
		return fmt.Errorf("kubeenv: %w", err)
	}
	defer os.RemoveAll(work)

	if err := b.buildEtcd(filepath.Join(work, "etcd"), tmp); err != nil {
		return err
	}
	if err := b.buildKubernetes(filepath.Join(work, "kube"), tmp); err != nil {
		return err
	}
	if err := os.RemoveAll(out); err != nil {
		return fmt.Errorf("kubeenv: %w", err)
	}
	if err := os.Rename(tmp, out); err != nil {
		return fmt.Errorf("kubeenv: %w", err)
	}
	fmt.Fprintf(b.log, "kubeenv: binaries ready in %s\n", out)
	return nil
}

type builder struct {
	ctx context.Context
	log io.Writer
}

func (b *builder) goCmd(dir string, args ...string) error {
	return b.goCmdTo(dir, b.log, args...)
}

// goCmdTo runs the go tool in dir with stdout going to stdout. The environment pins what
// matters for a reproducible, self-contained build: no workspace, no toolchain switch,
// static binaries, and module resolution allowed to update the generated go.mod.
func (b *builder) goCmdTo(dir string, stdout io.Writer, args ...string) error {
	fmt.Fprintf(b.log, "kubeenv: (cd %s && go %s)\n", dir, strings.Join(args, " "))
	cmd := exec.CommandContext(b.ctx, "go", args...) //nolint:gosec // the go tool, with arguments this package builds from its pinned versions
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOTOOLCHAIN=local", "CGO_ENABLED=0", "GOFLAGS=-mod=mod -buildvcs=false")
	cmd.Stdout = stdout
	cmd.Stderr = b.log
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("kubeenv: go %s in %s: %w (see build.log)", args[0], dir, err)
	}
	return nil
}

func writeModule(dir, goMod string, imports ...string) error {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return fmt.Errorf("kubeenv: %w", err)
	}
	var tools strings.Builder
	tools.WriteString("//go:build tools\n\npackage tools\n\nimport (\n")
	for _, imp := range imports {
		fmt.Fprintf(&tools, "\t_ %q\n", imp)
	}
	tools.WriteString(")\n")
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte(goMod), 0o600); err != nil {
		return fmt.Errorf("kubeenv: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "tools.go"), []byte(tools.String()), 0o600); err != nil {
		return fmt.Errorf("kubeenv: %w", err)
	}
	return nil
}

func (b *builder) buildEtcd(work, out string) error {
	const pkg = "go.etcd.io/etcd/server/v3"
	goMod := fmt.Sprintf("module kubeenv/etcd\n\ngo 1.24\n\nrequire %s %s\n", pkg, EtcdVersion)
	if err := writeModule(work, goMod, pkg); err != nil {
		return err
	}
	if err := b.goCmd(work, "mod", "tidy"); err != nil {
		return err
	}
	return b.goCmd(work, "build", "-trimpath", "-ldflags", "-s -w", "-o", filepath.Join(out, binEtcd), pkg)
}

// buildKubernetes builds kube-apiserver and kube-controller-manager from k8s.io/kubernetes.
// That module requires its staging modules (k8s.io/api, ...) at v0.0.0 and replaces them
// with ./staging paths; a dependency's replaces do not apply to us, so the wrapper maps each
// one to the matching published v0.MINOR.PATCH.
func (b *builder) buildKubernetes(work, out string) error {
	const mod = "k8s.io/kubernetes"
	if err := os.MkdirAll(work, 0o750); err != nil {
		return fmt.Errorf("kubeenv: %w", err)
	}
	var dl bytes.Buffer
	if err := b.goCmdTo(work, &dl, "mod", "download", "-json", mod+"@"+KubernetesVersion); err != nil {
		return err
	}
	var info struct{ GoMod string }
	if err := json.Unmarshal(dl.Bytes(), &info); err != nil {
		return fmt.Errorf("kubeenv: go mod download %s@%s: %w", mod, KubernetesVersion, err)
	}
	if info.GoMod == "" {
		return fmt.Errorf("kubeenv: go mod download %s@%s printed no GoMod", mod, KubernetesVersion)
	}
	upstream, err := os.ReadFile(info.GoMod)
	if err != nil {
		return fmt.Errorf("kubeenv: %w", err)
	}
	goMod, err := wrapperGoMod(string(upstream))
	if err != nil {
		return err
	}
	const apiserver, kcm = mod + "/cmd/" + binAPIServer, mod + "/cmd/" + binControllerManager
	if err := writeModule(work, goMod, apiserver, kcm); err != nil {
		return err
	}
	if err := b.goCmd(work, "mod", "tidy"); err != nil {
		return err
	}
	// -o DIR/ with several main packages writes each under its own name, and one go build
	// schedules the shared packages of both binaries once.
	return b.goCmd(work, "build", "-trimpath", "-ldflags", versionLDFlags(), "-o", out+string(filepath.Separator), apiserver, kcm)
}

// wrapperGoMod turns k8s.io/kubernetes's go.mod into the go.mod of a module that requires it.
func wrapperGoMod(upstream string) (string, error) {
	minorPatch := strings.TrimPrefix(KubernetesVersion, "v1.")
	staging := "v0." + minorPatch
	var goVersion string
	var replaced []string
	inReplace := false
	for _, line := range strings.Split(upstream, "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) == 2 && f[0] == "go":
			goVersion = f[1]
		case len(f) == 2 && f[0] == "replace" && f[1] == "(":
			inReplace = true
		case inReplace && len(f) == 1 && f[0] == ")":
			inReplace = false
		case inReplace && len(f) >= 3 && f[1] == "=>" && strings.HasPrefix(f[2], "./staging/"):
			replaced = append(replaced, f[0])
		}
	}
	if goVersion == "" || len(replaced) == 0 {
		return "", errors.New("kubeenv: unexpected k8s.io/kubernetes go.mod: no go directive or no staging replaces")
	}
	var s strings.Builder
	fmt.Fprintf(&s, "module kubeenv/kube\n\ngo %s\n\nrequire k8s.io/kubernetes %s\n\nreplace (\n", goVersion, KubernetesVersion)
	for _, m := range replaced {
		fmt.Fprintf(&s, "\t%s => %s %s\n", m, m, staging)
	}
	s.WriteString(")\n")
	return s.String(), nil
}

// versionLDFlags stamps the version the way hack/lib/version.sh does, so /version and the
// binaries' --version report the real release instead of v0.0.0-master.
func versionLDFlags() string {
	minor := strings.SplitN(strings.TrimPrefix(KubernetesVersion, "v1."), ".", 2)[0]
	flags := []string{"-s", "-w"}
	for _, pkg := range []string{"k8s.io/component-base/version", "k8s.io/client-go/pkg/version"} {
		flags = append(flags,
			"-X", pkg+".gitVersion="+KubernetesVersion,
			"-X", pkg+".gitMajor=1",
			"-X", pkg+".gitMinor="+minor,
			"-X", pkg+".gitTreeState=clean")
	}
	return strings.Join(flags, " ")
}
