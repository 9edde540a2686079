package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/kestrelai/otelcol-kestrel/internal/devcloud"
	"github.com/kestrelai/otelcol-kestrel/internal/kubeenv"
	"github.com/kestrelai/otelcol-kestrel/internal/testutil"
	"github.com/kestrelai/otelcol-kestrel/internal/testutil/cloudtest"
	"github.com/kestrelai/otelcol-kestrel/internal/testutil/toolstest"
)

// Certificate renewal in a cluster: the client certificate is a Secret mounted read-only, so
// a renewal patches the Secret through the API (with exactly the rights the chart grants)
// and the kubelet's refresh of the mount brings the new pair to the next handshake.
func TestCertificateRenewalIntoSecret(t *testing.T) {
	env := kubeenv.Shared(t)
	ns := env.Namespace(t)
	t.Setenv("KUBECONFIG", toolstest.Setup(t, env, ns))
	admin, err := kubernetes.NewForConfig(env.RestConfig())
	require.NoError(t, err)
	ctx := testCtx(t, 3*time.Minute)
	dc := cloudtest.Start(t, devcloud.Config{AdminListen: "127.0.0.1:0"})
	read := func(p string) []byte {
		b, err := os.ReadFile(p)
		require.NoError(t, err)
		return b
	}

	const name = "kestrel-client-tls"
	secret, err := admin.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: name}, Type: corev1.SecretTypeTLS,
		Data: map[string][]byte{
			corev1.TLSCertKey:       read(filepath.Join(dc.Certs, devcloud.ClientCertFile)),
			corev1.TLSPrivateKeyKey: read(filepath.Join(dc.Certs, devcloud.ClientKeyFile)),
		},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	vol := testutil.NewSecretVolume(t, secret.Data)
	require.NoError(t, os.Chmod(vol.Dir, 0o500), "read-only, like the chart's mount")
	t.Cleanup(func() { _ = os.Chmod(vol.Dir, 0o700) })

	conn := dc.ConnectionConfig()
	tlsCfg := conn["tls"].(map[string]any)
	tlsCfg["cert_file"], tlsCfg["key_file"] = vol.Path(corev1.TLSCertKey), vol.Path(corev1.TLSPrivateKeyKey)
	conn["certificate_renewal"] = map[string]any{"secret": map[string]any{"namespace": ns, "name": name}}
	conn["kubernetes"] = map[string]any{"auth_type": "kubeConfig"}
	raw, err := json.Marshal(conn)
	require.NoError(t, err)
	startWithConfig(t, "extensions:\n  kestrel_command: "+string(raw)+"\n"+fmt.Sprintf(toolsConfig, ns, ""))
	dc.WaitCommitted(t)
	x := &tools{ctl: buildDevcloudCLI(t), admin: dc.AdminAddr(), ns: ns, ctx: ctx, dc: dc, env: env}
	before := dc.Status().Operators[0].CertSerial

	dir := t.TempDir()
	issue := func(n string) (string, string, string) {
		c, k := filepath.Join(dir, n+".crt"), filepath.Join(dir, n+".key")
		serial, err := devcloud.IssueClientCert(dc.Certs, c, k)
		require.NoError(t, err)
		return c, k, serial
	}
	ca := filepath.Join(dc.Certs, devcloud.CACertFile)
	renew := func(c, k string) string {
		return x.run(t, "renew-cert", "--cert", c, "--key", k, "--ca", ca, "--wait", "0")
	}
	unchanged := func(msg string) {
		t.Helper()
		s, err := admin.CoreV1().Secrets(ns).Get(ctx, name, metav1.GetOptions{})
		require.NoError(t, err)
		assert.Equal(t, secret.ResourceVersion, s.ResourceVersion, msg)
		assert.Equal(t, secret.Data, s.Data, msg)
	}
	good, goodKey, serial := issue("good")

	// Without the right to patch the Secret: a clear refusal, nothing written.
	out := renew(good, goodKey)
	assert.Contains(t, out, "refused: certificate renewal refused: the collector may not write Secret "+ns+"/"+name)
	assert.Contains(t, out, `cannot get resource "secrets"`)
	unchanged("a refused renewal writes nothing")

	// Allowed to read the Secret but not to patch it: the patch's 403, nothing written.
	collector := "system:serviceaccount:" + ns + ":" + toolstest.Collector
	role := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "kestrel-client-tls"}, Rules: []rbacv1.PolicyRule{{
		APIGroups: []string{""}, Resources: []string{"secrets"}, ResourceNames: []string{name}, Verbs: []string{"get"}}}}
	_, err = admin.RbacV1().Roles(ns).Create(ctx, role, metav1.CreateOptions{})
	require.NoError(t, err)
	_, err = admin.RbacV1().RoleBindings(ns).Create(ctx, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: role.Name},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: role.Name},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: toolstest.Collector, Namespace: ns}}}, metav1.CreateOptions{})
	require.NoError(t, err)
	toolstest.WaitAllowed(t, env, collector, authorizationv1.ResourceAttributes{Namespace: ns, Verb: "get", Resource: "secrets", Name: name})
	out = renew(good, goodKey)
	assert.Contains(t, out, "refused: certificate renewal refused: the collector may not write Secret "+ns+"/"+name)
	assert.Contains(t, out, `cannot patch resource "secrets"`)
	unchanged("a refused patch writes nothing")

	// The chart's grant: get and patch on this one Secret, by name.
	role.Rules[0].Verbs = []string{"get", "patch"}
	_, err = admin.RbacV1().Roles(ns).Update(ctx, role, metav1.UpdateOptions{})
	require.NoError(t, err)
	toolstest.WaitAllowed(t, env, collector, authorizationv1.ResourceAttributes{Namespace: ns, Verb: "patch", Resource: "secrets", Name: name})

	// A bad pair is refused before anything is written.
	_, otherKey, _ := issue("other")
	assert.Contains(t, renew(good, otherKey), "refused: certificate renewal refused: the key does not match the certificate")
	unchanged("a bad pair leaves the Secret alone")

	// A good pair lands in the Secret, both keys in one write by kestrel-operator.
	out = renew(good, goodKey)
	assert.Contains(t, out, "accepted: certificate serial "+serial)
	s, err := admin.CoreV1().Secrets(ns).Get(ctx, name, metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, read(good), s.Data[corev1.TLSCertKey])
	assert.Equal(t, read(goodKey), s.Data[corev1.TLSPrivateKeyKey])
	managers := map[string]bool{}
	for _, m := range s.ManagedFields {
		managers[m.Manager] = true
	}
	assert.True(t, managers["kestrel-operator"], "field managers: %v", managers)
	assert.Equal(t, before, dc.Status().Operators[0].CertSerial, "the mount has not been refreshed yet")

	// The kubelet refreshes the mount; the next handshake presents the new certificate,
	// without a restart.
	require.NoError(t, os.Chmod(vol.Dir, 0o700))
	vol.Update(s.Data)
	require.NoError(t, dc.WaitStatus(ctx, func(st devcloud.Status) bool {
		return len(st.Operators) == 1 && st.Operators[0].CertSerial == serial && st.Operators[0].Committed
	}), "devcloud never saw serial %s", serial)
}
