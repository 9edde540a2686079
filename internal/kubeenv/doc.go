// Package kubeenv runs a real Kubernetes control plane on loopback for tests and local runs:
// etcd, kube-apiserver (RBAC, ServiceAccount tokens, static admin token) and, by default,
// kube-controller-manager, so Deployments get ReplicaSets and Pods (which stay Pending:
// there is no scheduler or kubelet) and namespaces finish deleting.
//
// The binaries are built from the Go module proxy once per machine (EnsureBinaries, or
// `go run ./cmd/kubeenv build`) and cached by version. Tests use one server per package:
//
//	func TestMain(m *testing.M) { kubeenv.Main(m) }
//
//	func TestSomething(t *testing.T) {
//		env := kubeenv.Shared(t) // skips only when KESTREL_SKIP_KUBE=1
//		ns := env.Namespace(t)
//		cs, _ := kubernetes.NewForConfig(env.RestConfig())
//		...
//	}
//
// Tests that stop the apiserver (Env.StopAPIServer, Env.StartAPIServer) should Start an
// environment of their own, since the outage would disturb every test sharing the server.
package kubeenv
