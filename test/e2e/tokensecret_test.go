package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/kestrelai/otelcol-kestrel/internal/cloudconn"
	"github.com/kestrelai/otelcol-kestrel/internal/devcloud"
	"github.com/kestrelai/otelcol-kestrel/internal/kubeenv"
	"github.com/kestrelai/otelcol-kestrel/internal/testutil"
	"github.com/kestrelai/otelcol-kestrel/internal/testutil/cloudtest"
	"github.com/kestrelai/otelcol-kestrel/internal/testutil/toolstest"
)

// tokenConfig is a collector with only the connection; its log goes to a file (%[2]s) so
// that the test can read the warnings.
const tokenConfig = `
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: %[1]s
exporters:
  nop: {}
service:
  extensions: [kestrel_command]
  pipelines:
    logs:
      receivers: [otlp]
      exporters: [nop]
  telemetry:
    logs:
      output_paths: [%[2]s]
    metrics:
      level: none
`

// Renewed tokens kept in a Secret (token::persist_secret, what the chart configures): with
// no right on the Secret the renewed token is used from memory and a warning says why; with
// get and patch on it a renewal lands there, and a restart starts from it; a token in the
// Secret older than the configured one loses.
func TestTokenPersistedInSecret(t *testing.T) {
	env := kubeenv.Shared(t)
	ns := env.Namespace(t)
	t.Setenv("KUBECONFIG", toolstest.Setup(t, env, ns))
	admin, err := kubernetes.NewForConfig(env.RestConfig())
	require.NoError(t, err)
	ctx := testCtx(t, 3*time.Minute)
	// The onboarding token has expired: the collector renews it as soon as it starts.
	certs := cloudtest.NewCerts(t, devcloud.CertOptions{TokenTTL: -time.Hour})
	dc := cloudtest.Start(t, devcloud.Config{CertsDir: certs, TokenTTL: 2 * time.Hour})
	onboarding, err := os.ReadFile(filepath.Join(certs, devcloud.TokenFile))
	require.NoError(t, err)
	tokenFile := filepath.Join(t.TempDir(), "token")
	require.NoError(t, os.WriteFile(tokenFile, onboarding, 0o600))

	const name = "kestrel-token"
	secret, err := admin.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: name}, Data: map[string][]byte{"token": onboarding},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	held := func() []byte {
		s, err := admin.CoreV1().Secrets(ns).Get(ctx, name, metav1.GetOptions{})
		require.NoError(t, err)
		return s.Data["token"]
	}

	conn := dc.ConnectionConfig()
	conn["token"] = map[string]any{"file": tokenFile, "persist_secret": map[string]any{"namespace": ns, "name": name}}
	conn["kubernetes"] = map[string]any{"auth_type": "kubeConfig"}
	raw, err := json.Marshal(conn)
	require.NoError(t, err)
	// start runs the collector until the next start; it returns the log file and the state
	// of the connection it made.
	var stop func()
	run := 0
	start := func() (string, devcloud.OperatorStatus) {
		t.Helper()
		if stop != nil {
			stop()
		}
		run++
		logFile := filepath.Join(t.TempDir(), fmt.Sprintf("collector-%d.log", run))
		since := time.Now()
		stop = startStoppable(t, "extensions:\n  kestrel_command: "+string(raw)+"\n"+fmt.Sprintf(tokenConfig, testutil.FreeAddr(t), logFile))
		var op devcloud.OperatorStatus
		require.NoError(t, dc.WaitStatus(ctx, func(st devcloud.Status) bool {
			if len(st.Operators) != 1 {
				return false
			}
			op = st.Operators[0]
			data := op.Streams[cloudconn.StreamData]
			return op.Committed && data.Open && data.OpenedAt.After(since)
		}), "run %d never connected", run)
		return logFile, op
	}
	logOf := func(path string) string {
		b, err := os.ReadFile(path)
		require.NoError(t, err)
		return string(b)
	}
	expiry := func(token []byte) time.Time {
		claims := jwt.MapClaims{}
		_, _, err := jwt.NewParser().ParseUnverified(string(token), claims)
		require.NoError(t, err)
		exp, err := claims.GetExpirationTime()
		require.NoError(t, err)
		return exp.Time
	}

	// No right on the Secret: the renewed token is used from memory, the warnings say why,
	// the Secret is untouched.
	logFile, op := start()
	assert.Equal(t, 1, dc.Status().Renewals)
	assert.WithinDuration(t, time.Now().Add(2*time.Hour), op.Streams[cloudconn.StreamData].TokenExpiry, time.Minute,
		"the renewed token is in use")
	require.Eventually(t, func() bool { return strings.Contains(logOf(logFile), "Could not persist the renewed token") }, 10*time.Second, 50*time.Millisecond)
	log := logOf(logFile)
	assert.Contains(t, log, "the collector may not read Secret "+ns+"/"+name)
	assert.Contains(t, log, "the collector may not write Secret "+ns+"/"+name)
	assert.Contains(t, log, "the next renewal writes again")
	s, err := admin.CoreV1().Secrets(ns).Get(ctx, name, metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, secret.ResourceVersion, s.ResourceVersion, "nothing written without the right")

	// The chart's grant: get and patch on this one Secret, by name. The next start renews
	// again (the Secret holds only the expired onboarding token) and the renewal lands there.
	collector := "system:serviceaccount:" + ns + ":" + toolstest.Collector
	_, err = admin.RbacV1().Roles(ns).Create(ctx, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: name}, Rules: []rbacv1.PolicyRule{{
		APIGroups: []string{""}, Resources: []string{"secrets"}, ResourceNames: []string{name}, Verbs: []string{"get", "patch"}}}}, metav1.CreateOptions{})
	require.NoError(t, err)
	_, err = admin.RbacV1().RoleBindings(ns).Create(ctx, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: name},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: name},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: toolstest.Collector, Namespace: ns}}}, metav1.CreateOptions{})
	require.NoError(t, err)
	toolstest.WaitAllowed(t, env, collector, authorizationv1.ResourceAttributes{Namespace: ns, Verb: "patch", Resource: "secrets", Name: name})
	logFile, op = start()
	assert.Equal(t, 2, dc.Status().Renewals)
	require.Eventually(t, func() bool { return !bytes.Equal(held(), onboarding) }, 10*time.Second, 50*time.Millisecond, "the renewal never reached the Secret")
	renewed := held()
	assert.Equal(t, expiry(renewed).Unix(), op.Streams[cloudconn.StreamData].TokenExpiry.Unix(), "the Secret holds the token in use")
	s, err = admin.CoreV1().Secrets(ns).Get(ctx, name, metav1.GetOptions{})
	require.NoError(t, err)
	managers := map[string]bool{}
	for _, m := range s.ManagedFields {
		managers[m.Manager] = true
	}
	assert.True(t, managers["kestrel-operator"], "field managers: %v", managers)
	assert.NotContains(t, logOf(logFile), "Could not persist")

	// A restart starts from the renewed token in the Secret: no renewal, no Unauthenticated.
	logFile, op = start()
	assert.Equal(t, 2, dc.Status().Renewals, "the persisted token needs no renewal")
	assert.Equal(t, expiry(renewed).Unix(), op.Streams[cloudconn.StreamData].TokenExpiry.Unix())
	assert.Contains(t, logOf(logFile), "Using the persisted renewed token")

	// A configured token issued after the one in the Secret wins, though the Secret's expires
	// later: the Secret's is older.
	require.Eventually(t, func() bool { return time.Now().Unix() > expiry(renewed).Add(-2*time.Hour).Unix() }, 2*time.Second, 10*time.Millisecond)
	fresh, err := devcloud.IssueToken(certs, cloudtest.Tenant, time.Hour)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(tokenFile, []byte(fresh), 0o600))
	logFile, op = start()
	assert.Equal(t, 2, dc.Status().Renewals)
	assert.Equal(t, expiry([]byte(fresh)).Unix(), op.Streams[cloudconn.StreamData].TokenExpiry.Unix(), "the configured token is in use")
	assert.NotContains(t, logOf(logFile), "Using the persisted renewed token")
	assert.Equal(t, renewed, held(), "no renewal, so the Secret is unchanged")
	stop()
}
