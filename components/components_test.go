package components

import (
	"encoding/json"
	"go/parser"
	"go/token"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/open-telemetry/opentelemetry-collector-contrib/processor/k8sattributesprocessor"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/provider/envprovider"
	"go.opentelemetry.io/collector/confmap/provider/fileprovider"
	"go.opentelemetry.io/collector/featuregate"
	"go.opentelemetry.io/collector/otelcol"
	"go.opentelemetry.io/collector/otelcol/otelcoltest"
	"go.opentelemetry.io/collector/pipeline"
	"go.yaml.in/yaml/v3"

	"github.com/kestrelai/otelcol-kestrel/internal/devcloud"
	"github.com/kestrelai/otelcol-kestrel/internal/k8sapi"
	"github.com/kestrelai/otelcol-kestrel/processor/metricsstoreprocessor"
	"github.com/kestrelai/otelcol-kestrel/receiver/envoyalsreceiver"
	"github.com/kestrelai/otelcol-kestrel/receiver/k8sinventoryreceiver"
	"github.com/kestrelai/otelcol-kestrel/receiver/k8sriskreceiver"
	"github.com/kestrelai/otelcol-kestrel/receiver/kestreltoolsreceiver"
)

// builderConfig is the part of ocb's manifest this test compares.
type builderConfig struct {
	Dist struct {
		Name       string `yaml:"name"`
		OutputPath string `yaml:"output_path"`
	} `yaml:"dist"`
	Receivers  []builderModule `yaml:"receivers"`
	Processors []builderModule `yaml:"processors"`
	Exporters  []builderModule `yaml:"exporters"`
	Extensions []builderModule `yaml:"extensions"`
	Connectors []builderModule `yaml:"connectors"`
	Providers  []builderModule `yaml:"providers"`
	Telemetry  builderModule   `yaml:"telemetry"`
	Replaces   []string        `yaml:"replaces"`
}

type builderModule struct {
	GoMod  string `yaml:"gomod"`
	Import string `yaml:"import"`
	Path   string `yaml:"path"`
}

// importPath is what ocb imports for the entry: `import:` or else the module path.
func (m builderModule) importPath() string {
	if m.Import != "" {
		return m.Import
	}
	return strings.Fields(m.GoMod)[0]
}

const thisModule = "github.com/kestrelai/otelcol-kestrel"

func loadBuilderConfig(t *testing.T) builderConfig {
	t.Helper()
	return loadManifest(t, "builder-config.yaml")
}

func loadManifest(t *testing.T, name string) builderConfig {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", name))
	require.NoError(t, err)
	var cfg builderConfig
	require.NoError(t, yaml.Unmarshal(raw, &cfg))
	return cfg
}

// modules returns, for one component kind, the module of every real type (skipping
// deprecated aliases, which share their factory), sorted.
func modules[F component.Factory](factories map[component.Type]F, modules map[component.Type]string) []string {
	var out []string
	for typ, f := range factories {
		if typ != f.Type() {
			continue
		}
		out = append(out, modules[typ])
	}
	slices.Sort(out)
	return out
}

// manifestModules returns the modules of manifest entries, without their versions
// (TestBuilderVersionsMatchGoMod checks those), sorted.
func manifestModules(mods []builderModule) []string {
	var out []string
	for _, m := range mods {
		out = append(out, strings.Fields(m.GoMod)[0])
	}
	slices.Sort(out)
	return out
}

func TestComponentsMatchBuilderConfig(t *testing.T) {
	cfg := loadBuilderConfig(t)
	factories, err := Components()
	require.NoError(t, err)

	const msg = "components.go and builder-config.yaml list different %s; edit both"
	assert.Equal(t, manifestModules(cfg.Receivers), modules(factories.Receivers, factories.ReceiverModules), msg, "receivers")
	assert.Equal(t, manifestModules(cfg.Processors), modules(factories.Processors, factories.ProcessorModules), msg, "processors")
	assert.Equal(t, manifestModules(cfg.Exporters), modules(factories.Exporters, factories.ExporterModules), msg, "exporters")
	assert.Equal(t, manifestModules(cfg.Extensions), modules(factories.Extensions, factories.ExtensionModules), msg, "extensions")
	assert.Equal(t, manifestModules(cfg.Connectors), modules(factories.Connectors, factories.ConnectorModules), msg, "connectors")

	// Same packages: what components.go imports, minus the collector framework, must be
	// exactly what ocb imports for the manifest, telemetry factory included.
	want := []string{cfg.Telemetry.importPath()}
	for _, mods := range [][]builderModule{cfg.Receivers, cfg.Processors, cfg.Exporters, cfg.Extensions, cfg.Connectors} {
		for _, m := range mods {
			want = append(want, m.importPath())
		}
	}
	framework := []string{
		"go.opentelemetry.io/collector/component",
		"go.opentelemetry.io/collector/connector",
		"go.opentelemetry.io/collector/exporter",
		"go.opentelemetry.io/collector/extension",
		"go.opentelemetry.io/collector/otelcol",
		"go.opentelemetry.io/collector/processor",
		"go.opentelemetry.io/collector/receiver",
	}
	file, err := parser.ParseFile(token.NewFileSet(), "components.go", nil, parser.ImportsOnly)
	require.NoError(t, err)
	var got []string
	for _, imp := range file.Imports {
		p, err := strconv.Unquote(imp.Path.Value)
		require.NoError(t, err)
		if !slices.Contains(framework, p) {
			got = append(got, p)
		}
	}
	slices.Sort(want)
	slices.Sort(got)
	assert.Equal(t, want, got, "components.go imports differ from builder-config.yaml")
}

func TestBuilderConfigShape(t *testing.T) {
	cfg := loadBuilderConfig(t)
	assert.Equal(t, "otelcol-kestrel", cfg.Dist.Name)
	assert.Equal(t, "./_build", cfg.Dist.OutputPath)
	assert.Empty(t, cfg.Replaces, "upstream modules must not be replaced")
	// No http/https providers: a collector that fetches its configuration remotely is not
	// what users install. TestBuilderVersionsMatchGoMod checks the versions.
	var providers []string
	for _, m := range cfg.Providers {
		providers = append(providers, strings.Fields(m.GoMod)[0])
	}
	assert.ElementsMatch(t, []string{
		"go.opentelemetry.io/collector/confmap/provider/envprovider",
		"go.opentelemetry.io/collector/confmap/provider/fileprovider",
		"go.opentelemetry.io/collector/confmap/provider/yamlprovider",
	}, providers)

	// In-repo components come from this module through `path: .`, each with its package.
	for _, mods := range [][]builderModule{cfg.Receivers, cfg.Processors, cfg.Exporters, cfg.Extensions, cfg.Connectors} {
		for _, m := range mods {
			if strings.Fields(m.GoMod)[0] != thisModule {
				assert.Empty(t, m.Path, "%s: only in-repo modules use path", m.GoMod)
				continue
			}
			assert.Equal(t, thisModule+" v0.0.0", m.GoMod)
			assert.Equal(t, ".", m.Path, "%s: in-repo components build from this checkout", m.Import)
			assert.True(t, strings.HasPrefix(m.Import, thisModule+"/"), "%s: import the component package", m.Import)
		}
	}
}

// TestBuilderVersionsMatchGoMod keeps ocb's build and this module's tests on the same
// versions: every upstream gomod in the manifest must be the version go.mod requires.
func TestBuilderVersionsMatchGoMod(t *testing.T) {
	cfg := loadBuilderConfig(t)
	cmd := exec.Command("go", "mod", "edit", "-json")
	cmd.Dir = ".."
	out, err := cmd.Output()
	require.NoError(t, err, "go mod edit -json")
	var gomod struct {
		Require []struct{ Path, Version string }
	}
	require.NoError(t, json.Unmarshal(out, &gomod))
	required := map[string]string{}
	for _, r := range gomod.Require {
		required[r.Path] = r.Version
	}
	for _, mods := range [][]builderModule{cfg.Receivers, cfg.Processors, cfg.Exporters, cfg.Extensions, cfg.Connectors, cfg.Providers} {
		for _, m := range mods {
			fields := strings.Fields(m.GoMod)
			require.Len(t, fields, 2, "gomod %q must be `module version`", m.GoMod)
			if fields[0] == thisModule {
				continue
			}
			assert.Equal(t, fields[1], required[fields[0]], "%s: builder-config.yaml and go.mod disagree", fields[0])
		}
	}
}

// setLocalEnv sets what config/local.yaml needs from the environment, and the feature
// gate that scripts/run.sh passes for its health_check (component status).
func setLocalEnv(t *testing.T) {
	t.Helper()
	const gate = "extension.healthcheck.useComponentStatus"
	require.NoError(t, featuregate.GlobalRegistry().Set(gate, true))
	t.Cleanup(func() { _ = featuregate.GlobalRegistry().Set(gate, false) })
	certs := t.TempDir()
	require.NoError(t, devcloud.GenerateCerts(certs, devcloud.CertOptions{}))
	t.Setenv("KESTREL_CERTS_DIR", certs)
	t.Setenv("KESTREL_STATE_DIR", t.TempDir())
}

func TestLocalConfigValidates(t *testing.T) {
	setLocalEnv(t)

	factories, err := Components()
	require.NoError(t, err)
	cfg, err := otelcoltest.LoadConfigAndValidate(filepath.Join("..", "config", "local.yaml"), factories)
	require.NoError(t, err)

	logs := cfg.Service.Pipelines[pipeline.NewID(pipeline.SignalLogs)]
	require.NotNil(t, logs)
	assert.Equal(t, []component.ID{component.MustNewID("kestrel")}, logs.Exporters)
	assert.Equal(t, []component.ID{component.MustNewID("memory_limiter")}, logs.Processors,
		"nothing between the receivers and the exporter's queue holds data")
	assert.Contains(t, cfg.Service.Extensions, component.MustNewID("kestrel_command"))
}

// TestLocalKubeOverlayValidates loads config/local.yaml with the config/local-kube.yaml
// overlay the way `make run` passes them (two --config flags, merged in order by the
// collector's resolver) and checks the merge: the kube receivers join the logs pipeline
// without losing local.yaml's, and k8s_attributes switches to full mode.
func TestLocalKubeOverlayValidates(t *testing.T) {
	setLocalEnv(t)
	factories, err := Components()
	require.NoError(t, err)
	resolve := func(files ...string) *otelcol.Config {
		uris := make([]string, 0, len(files))
		for _, f := range files {
			uris = append(uris, "file:"+filepath.Join("..", "config", f))
		}
		provider, err := otelcol.NewConfigProvider(otelcol.ConfigProviderSettings{
			ResolverSettings: confmap.ResolverSettings{
				URIs:              uris,
				ProviderFactories: []confmap.ProviderFactory{fileprovider.NewFactory(), envprovider.NewFactory()},
				DefaultScheme:     "env",
			},
		})
		require.NoError(t, err)
		cfg, err := provider.Get(t.Context(), factories)
		require.NoError(t, err)
		require.NoError(t, confmap.Validate(cfg))
		return cfg
	}
	base := resolve("local.yaml")
	merged := resolve("local.yaml", "local-kube.yaml")

	logs := pipeline.NewID(pipeline.SignalLogs)
	inventory := component.MustNewID("k8s_inventory")
	want := append(slices.Clone(base.Service.Pipelines[logs].Receivers), inventory, component.MustNewID("k8s_risk"))
	assert.Equal(t, want, merged.Service.Pipelines[logs].Receivers,
		"local-kube.yaml must repeat local.yaml's logs receivers: lists are replaced, not merged")
	assert.Equal(t, base.Service.Pipelines[logs].Exporters, merged.Service.Pipelines[logs].Exporters)
	metrics := pipeline.NewID(pipeline.SignalMetrics)
	assert.Equal(t, base.Service.Pipelines[metrics], merged.Service.Pipelines[metrics])

	inv := merged.Receivers[inventory].(*k8sinventoryreceiver.Config)
	assert.Equal(t, k8sapi.AuthTypeKubeConfig, inv.AuthType)
	risk := merged.Receivers[component.MustNewID("k8s_risk")].(*k8sriskreceiver.Config)
	assert.Equal(t, k8sapi.AuthTypeKubeConfig, risk.AuthType, "same identity as k8s_inventory: one set of informers")
	als := merged.Receivers[component.MustNewID("envoy_access_log")].(*envoyalsreceiver.Config)
	assert.Equal(t, k8sapi.AuthTypeKubeConfig, als.Kubernetes.Get().AuthType, "sidecars resolved to workloads")
	store := merged.Processors[component.MustNewID("metrics_store")].(*metricsstoreprocessor.Config)
	assert.Equal(t, k8sapi.AuthTypeKubeConfig, store.Kubernetes.Get().AuthType, "pods of metrics resolved to workloads")
	tools := merged.Receivers[component.MustNewID("kestrel_tools")].(*kestreltoolsreceiver.Config)
	assert.Equal(t, k8sapi.AuthTypeKubeConfig, tools.Kubernetes.AuthType)
	assert.Equal(t, "kestrel", tools.Identity.Namespace, "the demo's reader ServiceAccount")
	assert.True(t, tools.Identity.Impersonate)
	toolsLogs := merged.Service.Pipelines[pipeline.NewIDWithName(pipeline.SignalLogs, "tools")]
	require.NotNil(t, toolsLogs, "the tools' audit trail has a pipeline")
	assert.Equal(t, []component.ID{component.MustNewID("kestrel_tools")}, toolsLogs.Receivers)
	attrs := merged.Processors[component.MustNewID("k8s_attributes")].(*k8sattributesprocessor.Config)
	assert.False(t, attrs.Passthrough, "full mode")
	assert.EqualValues(t, "kubeConfig", attrs.APIConfig.AuthType)
	assert.Contains(t, merged.Service.Pipelines[metrics].Processors, component.MustNewID("k8s_attributes"))
}

// TestValidateCommandFailsWithoutCertificate runs `otelcol-kestrel validate` (the
// collector's own command, as the binary runs it) on config/local.yaml with an empty
// certificate directory: validation must fail and name the missing file.
func TestValidateCommandFailsWithoutCertificate(t *testing.T) {
	setLocalEnv(t)
	empty := t.TempDir()
	t.Setenv("KESTREL_CERTS_DIR", empty)
	cmd := otelcol.NewCommand(otelcol.CollectorSettings{
		BuildInfo: component.NewDefaultBuildInfo(),
		Factories: Components,
		ConfigProviderSettings: otelcol.ConfigProviderSettings{
			ResolverSettings: confmap.ResolverSettings{
				URIs:              []string{"file:" + filepath.Join("..", "config", "local.yaml")},
				ProviderFactories: []confmap.ProviderFactory{fileprovider.NewFactory(), envprovider.NewFactory()},
				DefaultScheme:     "env",
			},
		},
	})
	cmd.SetArgs([]string{"validate", "--config", "file:" + filepath.Join("..", "config", "local.yaml")})
	cmd.SetOut(io.Discard)
	cmd.SetErr(io.Discard)
	err := cmd.Execute()
	require.Error(t, err)
	require.ErrorContains(t, err, `tls::ca_file "`+filepath.Join(empty, "ca.crt")+`" cannot be read`)

	// With the certificates in place the same command passes.
	certs := t.TempDir()
	require.NoError(t, devcloud.GenerateCerts(certs, devcloud.CertOptions{}))
	t.Setenv("KESTREL_CERTS_DIR", certs)
	require.NoError(t, cmd.Execute())
}

// The node agent is built from the same module with a subset of the distribution's
// components, at the same versions, so that a configuration the distribution accepts for
// the agent's components means the same to the agent.
func TestAgentManifestIsASubset(t *testing.T) {
	full, agent := loadBuilderConfig(t), loadManifest(t, "builder-config-agent.yaml")
	assert.Equal(t, "otelcol-kestrel-agent", agent.Dist.Name)
	for _, kind := range []struct {
		name        string
		agent, full []builderModule
	}{
		{"receivers", agent.Receivers, full.Receivers},
		{"processors", agent.Processors, full.Processors},
		{"exporters", agent.Exporters, full.Exporters},
		{"extensions", agent.Extensions, full.Extensions},
		{"connectors", agent.Connectors, full.Connectors},
		{"providers", agent.Providers, full.Providers},
	} {
		for _, m := range kind.agent {
			assert.Contains(t, kind.full, m, "%s: builder-config-agent.yaml has an entry that builder-config.yaml lacks (or has at another version)", kind.name)
		}
	}
	assert.Equal(t, full.Providers, agent.Providers, "the same configuration sources")
	assert.Equal(t, full.Replaces, agent.Replaces)
}
