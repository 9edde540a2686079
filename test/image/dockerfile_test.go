// Package image checks the Dockerfile with BuildKit's own parser (there is no Docker engine
// here to build it): an ocb build stage, and a distroless nonroot runtime holding the one
// binary as its entrypoint, with the user the chart's pod runs as.
package image

import (
	"bytes"
	"os"
	"regexp"
	"testing"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"sigs.k8s.io/yaml"
)

func parse(t *testing.T) ([]instructions.Stage, map[string]string) {
	t.Helper()
	src, err := os.ReadFile("../../Dockerfile")
	require.NoError(t, err)
	res, err := parser.Parse(bytes.NewReader(src))
	require.NoError(t, err)
	stages, metaArgs, err := instructions.Parse(res.AST, nil)
	require.NoError(t, err)
	args := map[string]string{}
	for _, a := range metaArgs {
		for _, kv := range a.Args {
			args[kv.Key] = kv.ValueString()
		}
	}
	return stages, args
}

func TestDockerfile(t *testing.T) {
	stages, args := parse(t)
	require.Len(t, stages, 2, "a build stage and the runtime")
	build, runtime := stages[0], stages[1]

	// The build stage runs the ocb version the Makefile pins, on builder-config.yaml.
	assert.Equal(t, "build", build.Name)
	assert.Equal(t, "golang:${GO_VERSION}", build.BaseName)
	makefile, err := os.ReadFile("../../Makefile")
	require.NoError(t, err)
	m := regexp.MustCompile(`(?m)^OCB_VERSION\s+\?=\s+(\S+)$`).FindSubmatch(makefile)
	require.NotNil(t, m)
	assert.Equal(t, string(m[1]), args["OCB_VERSION"])
	var runs []string
	for _, c := range build.Commands {
		if r, ok := c.(*instructions.RunCommand); ok {
			runs = append(runs, r.CmdLine...)
		}
	}
	assert.Contains(t, runs, "go install go.opentelemetry.io/collector/cmd/builder@${OCB_VERSION}")
	assert.Contains(t, runs, "builder --config builder-config.yaml")
	assert.Contains(t, runs, "builder --config builder-config-agent.yaml")

	// The runtime: distroless static as nonroot, nothing run in it, the two binaries copied in.
	assert.Equal(t, "gcr.io/distroless/static-debian12:nonroot", runtime.BaseName)
	var user string
	var entrypoint *instructions.EntrypointCommand
	var copies []*instructions.CopyCommand
	for _, c := range runtime.Commands {
		switch c := c.(type) {
		case *instructions.UserCommand:
			user = c.User
		case *instructions.EntrypointCommand:
			entrypoint = c
		case *instructions.CopyCommand:
			copies = append(copies, c)
		case *instructions.RunCommand, *instructions.AddCommand:
			t.Errorf("the runtime stage must not %s: it has no shell or package manager", c.Name())
		}
	}
	require.Len(t, copies, 2)
	assert.Equal(t, "build", copies[0].From)
	assert.Equal(t, []string{"/src/_build/otelcol-kestrel"}, copies[0].SourcePaths)
	assert.Equal(t, "/otelcol-kestrel", copies[0].DestPath)
	assert.Equal(t, "build", copies[1].From)
	assert.Equal(t, []string{"/src/_build-agent/otelcol-kestrel-agent"}, copies[1].SourcePaths)
	assert.Equal(t, "/otelcol-kestrel-agent", copies[1].DestPath)
	require.NotNil(t, entrypoint)
	assert.False(t, entrypoint.PrependShell, "exec form: there is no shell")
	assert.Equal(t, []string{"/otelcol-kestrel"}, entrypoint.CmdLine)

	// The user is distroless's nonroot, which the chart's pod security context names too.
	assert.Equal(t, "65532:65532", user)
	var values struct {
		PodSecurityContext struct {
			RunAsUser  int  `json:"runAsUser"`
			RunAsGroup int  `json:"runAsGroup"`
			NonRoot    bool `json:"runAsNonRoot"`
		} `json:"podSecurityContext"`
	}
	raw, err := os.ReadFile("../../charts/kestrel-operator/values.yaml")
	require.NoError(t, err)
	require.NoError(t, yaml.Unmarshal(raw, &values))
	assert.Equal(t, 65532, values.PodSecurityContext.RunAsUser)
	assert.Equal(t, 65532, values.PodSecurityContext.RunAsGroup)
	assert.True(t, values.PodSecurityContext.NonRoot)
}
