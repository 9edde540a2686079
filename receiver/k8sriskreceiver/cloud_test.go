package k8sriskreceiver

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/receiver/receivertest"
	"google.golang.org/protobuf/proto"
	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/utils/ptr"

	cloudv1 "github.com/kestrelai/otelcol-kestrel/api/cloud/v1"
	"github.com/kestrelai/otelcol-kestrel/internal/cloudconn"
	"github.com/kestrelai/otelcol-kestrel/internal/devcloud"
	"github.com/kestrelai/otelcol-kestrel/internal/kubeenv"
	"github.com/kestrelai/otelcol-kestrel/internal/testutil/pipelinetest"
	"github.com/kestrelai/otelcol-kestrel/receiver/k8sriskreceiver/internal/metadata"
)

// Findings reach Kestrel Cloud through the kestrel exporter and kestrel_command as
// cloud.v1.RiskFinding on StreamEvents, each full assessment closed by a RiskAssessment; a
// server without StreamEvents gets them on StreamData.
func TestFindingsReachTheCloud(t *testing.T) {
	for name, oldServer := range map[string]bool{"current server": false, "server without side streams": true} {
		t.Run(name, func(t *testing.T) {
			env := kubeenv.Shared(t)
			cs := adminClient(t, env)
			ns := env.Namespace(t)
			setUpNamespace(t, cs, ns, namespaceBasics{})
			createDeployment(t, cs, goodDeployment(ns, "privileged", func(d *appsv1.Deployment) {
				container(d).SecurityContext.Privileged = ptr.To(true)
				container(d).SecurityContext.AllowPrivilegeEscalation = nil
			}))

			p := pipelinetest.New(t, devcloud.Config{OldServer: oldServer, HeartbeatInterval: 200 * time.Millisecond})
			startReceiverOn(t, testConfig(ns), isolatedConfig(t, env), p.Exporter, receivertest.NewNopSettings(metadata.Type), p.Host)
			p.Ready(t)

			stream := cloudconn.StreamEvents
			if oldServer {
				stream = cloudconn.StreamData
			}
			got := p.Cloud.WaitPayloads(t, stream, &cloudv1.RiskAssessment{}, func(ps []proto.Message) bool { return len(ps) > 0 })
			a := got[0].(*cloudv1.RiskAssessment)
			assert.NotEmpty(t, a.AssessmentId)
			assert.Positive(t, a.Objects)
			findings := p.Cloud.WaitPayloads(t, stream, &cloudv1.RiskFinding{}, func(ps []proto.Message) bool { return len(ps) >= 2 })
			var privileged *cloudv1.RiskFinding
			for _, m := range findings {
				f := m.(*cloudv1.RiskFinding)
				if f.CheckId == "security.privileged-container" {
					privileged = f
				}
			}
			require.NotNil(t, privileged)
			assert.Equal(t, "fail", privileged.Result)
			assert.Equal(t, "new", privileged.Status)
			assert.Equal(t, "critical", privileged.Severity)
			assert.Equal(t, "Deployment", privileged.Object.GetKind())
			assert.Equal(t, ns, privileged.Object.GetNamespace())
			assert.Equal(t, a.AssessmentId, privileged.AssessmentId)
			assert.Equal(t, []string{"C-0057"}, privileged.KubescapeIds)
			assert.NotEmpty(t, privileged.Evidence)
			assert.NotNil(t, privileged.ObservedAt)
			assert.NotEmpty(t, privileged.Message)
		})
	}
}
