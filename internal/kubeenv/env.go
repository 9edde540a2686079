package kubeenv

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// Options configure Start.
type Options struct {
	// Dir holds everything the environment writes: pki/, etcd/ (data), one log file per
	// process, pid files and kubeconfig. It is created if missing. Empty means a new
	// temporary directory that Stop removes. Data of an earlier Start in Dir is discarded.
	Dir string
	// AssetsDir holds etcd, kube-apiserver and kube-controller-manager. Empty means
	// $KUBEENV_ASSETS, or else EnsureBinaries (which builds them once per machine).
	AssetsDir string
	// BuildLog receives the go tool's output if the binaries have to be built.
	BuildLog io.Writer
	// NoControllerManager skips kube-controller-manager. Without it Deployments get no
	// ReplicaSets, namespaces never finish deleting and no "default" ServiceAccounts exist,
	// so the ServiceAccount admission plugin is disabled to let pods be created.
	NoControllerManager bool
	// ControllerManagerQPS raises the controller-manager's request rate to the apiserver
	// (default 20/s, burst 30), e.g. so that Deployments of thousands of pods fill quickly.
	ControllerManagerQPS int
	// ReadyTimeout bounds the wait for each process to become ready (default 60s).
	ReadyTimeout time.Duration
	// Detach starts the processes in their own sessions so that they outlive the caller
	// (kubeenv up --detach); StopDir stops them later. Without it they die with the caller.
	Detach bool
}

// Env is a running etcd + kube-apiserver (+ kube-controller-manager) on loopback.
type Env struct {
	dir, assets  string
	removeDir    bool
	readyTimeout time.Duration
	pki          *pkiFiles
	host         string
	apiArgs      []string
	detach       bool
	kcmQPS       int
	httpClient   *http.Client // trusts the CA and authenticates as admin; for readiness probes

	mu        sync.Mutex
	etcd      *proc
	apiserver *proc
	kcm       *proc
}

// Start generates credentials, starts the processes and returns once the apiserver is
// ready (and, with the controller-manager, once the "default" ServiceAccount exists, so
// pods can be created in the default namespace right away). ctx bounds the start only:
// the processes run until Stop.
func Start(ctx context.Context, opts Options) (_ *Env, err error) {
	e := &Env{dir: opts.Dir, assets: opts.AssetsDir, readyTimeout: opts.ReadyTimeout, detach: opts.Detach, kcmQPS: opts.ControllerManagerQPS}
	if e.readyTimeout <= 0 {
		e.readyTimeout = 60 * time.Second
	}
	if e.assets == "" {
		e.assets = os.Getenv("KUBEENV_ASSETS")
	}
	if e.assets == "" {
		if e.assets, err = EnsureBinaries(ctx, opts.BuildLog); err != nil {
			return nil, err
		}
	}
	needed := allBinaries
	if opts.NoControllerManager {
		needed = []string{binEtcd, binAPIServer}
	}
	if !haveBinaries(e.assets, needed...) {
		return nil, fmt.Errorf("kubeenv: %s lacks one of %s", e.assets, strings.Join(needed, ", "))
	}
	if e.dir == "" {
		if e.dir, err = os.MkdirTemp("", "kubeenv-"); err != nil {
			return nil, err
		}
		e.removeDir = true
	} else if err := os.MkdirAll(e.dir, 0o700); err != nil { // holds the cluster's keys
		return nil, err
	}
	if e.dir, err = filepath.Abs(e.dir); err != nil {
		return nil, err
	}
	for _, name := range allBinaries {
		if pid, alive, _ := livePid(e.dir, name); alive {
			return nil, fmt.Errorf("kubeenv: %s (pid %d) already runs in %s; stop it first (kubeenv down --dir %s)", name, pid, e.dir, e.dir)
		}
	}
	// Every Start is a new cluster: an old etcd member's data would carry old peer URLs.
	if err := os.RemoveAll(filepath.Join(e.dir, "etcd")); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			e.Stop()
		}
	}()

	if e.pki, err = writePKI(filepath.Join(e.dir, "pki")); err != nil {
		return nil, fmt.Errorf("kubeenv: writing credentials: %w", err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(e.pki.caPEM)
	e.httpClient = &http.Client{
		Timeout:   5 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}},
	}
	ports, err := freePorts(3)
	if err != nil {
		return nil, err
	}
	etcdURL := "http://127.0.0.1:" + strconv.Itoa(ports[0])
	peerURL := "http://127.0.0.1:" + strconv.Itoa(ports[1])
	e.host = "https://127.0.0.1:" + strconv.Itoa(ports[2])

	e.etcd, err = startProc(e.dir, binEtcd, filepath.Join(e.assets, binEtcd), []string{
		"--name=kubeenv",
		"--data-dir=" + filepath.Join(e.dir, "etcd"),
		"--listen-client-urls=" + etcdURL,
		"--advertise-client-urls=" + etcdURL,
		"--listen-peer-urls=" + peerURL,
		"--initial-advertise-peer-urls=" + peerURL,
		"--initial-cluster=kubeenv=" + peerURL,
		"--unsafe-no-fsync", // test data: durability is not worth the fsync latency
	}, e.detach)
	if err != nil {
		return nil, err
	}
	if err := e.waitReady(ctx, e.etcd, etcdURL+"/health", false); err != nil {
		return nil, err
	}

	e.apiArgs = []string{
		"--etcd-servers=" + etcdURL,
		"--bind-address=127.0.0.1",
		"--advertise-address=127.0.0.1",
		"--secure-port=" + strconv.Itoa(ports[2]),
		"--tls-cert-file=" + e.pki.servingCert,
		"--tls-private-key-file=" + e.pki.servingKey,
		"--token-auth-file=" + e.pki.tokens,
		"--authorization-mode=RBAC",
		"--service-account-issuer=" + serviceAccountIssuer,
		"--service-account-key-file=" + e.pki.saKey,
		"--service-account-signing-key-file=" + e.pki.saKey,
		"--service-cluster-ip-range=" + serviceClusterIPRange,
		"--allow-privileged=true",
		// The "kubernetes" Endpoints may not point at loopback; without this the apiserver
		// logs an error every 10s trying to reconcile it.
		"--endpoint-reconciler-type=none",
		"--profiling=false",
	}
	if opts.NoControllerManager {
		e.apiArgs = append(e.apiArgs, "--disable-admission-plugins=ServiceAccount")
	}
	if err := e.startAPIServer(ctx); err != nil {
		return nil, err
	}
	if err := e.writeKubeconfig(); err != nil {
		return nil, err
	}
	if !opts.NoControllerManager {
		if err := e.startControllerManager(ctx); err != nil {
			return nil, err
		}
	}
	return e, nil
}

// freePorts asks the kernel for n distinct free loopback ports. They are released before
// the servers bind them; Linux hands out bind(0) ports from a different parity than
// outgoing connections use, which keeps that window from being a practical problem.
func freePorts(n int) ([]int, error) {
	ports := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("kubeenv: finding a free port: %w", err)
		}
		defer l.Close() // hold all until the end so that the n ports differ
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

func (e *Env) startAPIServer(ctx context.Context) error {
	p, err := startProc(e.dir, binAPIServer, filepath.Join(e.assets, binAPIServer), e.apiArgs, e.detach)
	if err != nil {
		return err
	}
	e.mu.Lock()
	e.apiserver = p
	e.mu.Unlock()
	return e.waitReady(ctx, p, e.host+"/readyz", true)
}

func (e *Env) startControllerManager(ctx context.Context) error {
	args := []string{
		"--kubeconfig=" + e.Kubeconfig(),
		"--leader-elect=false", // a lost lease would make it exit while the apiserver restarts
		"--secure-port=0",      // nobody scrapes its metrics; one port less to pick
		"--controllers=" + strings.Join([]string{
			"namespace-controller", "serviceaccount-controller", "serviceaccount-token-controller",
			"garbage-collector-controller", "deployment-controller", "replicaset-controller",
			"statefulset-controller", "daemonset-controller", "job-controller", "cronjob-controller",
			"endpointslice-controller", "root-ca-certificate-publisher-controller",
			"clusterrole-aggregation-controller",
		}, ","),
		"--service-account-private-key-file=" + e.pki.saKey,
		"--root-ca-file=" + e.pki.caCert,
		"--use-service-account-credentials=false",
	}
	if e.kcmQPS > 0 {
		args = append(args, fmt.Sprintf("--kube-api-qps=%d", e.kcmQPS), fmt.Sprintf("--kube-api-burst=%d", 2*e.kcmQPS))
	}
	p, err := startProc(e.dir, binControllerManager, filepath.Join(e.assets, binControllerManager), args, e.detach)
	if err != nil {
		return err
	}
	e.mu.Lock()
	e.kcm = p
	e.mu.Unlock()
	// The "default" ServiceAccount of "default" shows the controllers are running, and pods
	// need it with the ServiceAccount admission plugin on.
	return e.waitReady(ctx, p, e.host+"/api/v1/namespaces/default/serviceaccounts/default", true)
}

// waitReady polls url until it answers 200, p exits, or the ready timeout passes. There is
// no event to wait for: readiness is only observable by asking.
func (e *Env) waitReady(ctx context.Context, p *proc, url string, auth bool) error {
	ctx, cancel := context.WithTimeout(ctx, e.readyTimeout)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		if last = e.probe(ctx, url, auth); last == nil {
			return nil
		}
		select {
		case <-p.done:
			return p.exitError()
		case <-ctx.Done():
			return fmt.Errorf("kubeenv: %s not ready at %s after %v: %w (last probe: %w)\n--- last lines of %s ---\n%s",
				p.name, url, e.readyTimeout, ctx.Err(), last, p.logPath, logTail(p.logPath, 25))
		case <-tick.C:
		}
	}
}

func (e *Env) probe(ctx context.Context, url string, auth bool) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, http.NoBody)
	if err != nil {
		return err
	}
	if auth {
		req.Header.Set("Authorization", "Bearer "+e.pki.adminToken)
	}
	resp, err := e.httpClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("HTTP %d: %s", resp.StatusCode, strings.TrimSpace(string(body)))
	}
	return nil
}

// StopAPIServer kills kube-apiserver alone, like a crash: clients' connections break at
// once (a graceful stop would wait for their watches to end). etcd and the
// controller-manager keep running, and clients see connection errors until StartAPIServer.
func (e *Env) StopAPIServer() {
	e.mu.Lock()
	p := e.apiserver
	e.apiserver = nil
	e.mu.Unlock()
	if p != nil {
		p.stop(0)
	}
}

// StartAPIServer starts kube-apiserver again with the same port, credentials and etcd
// (so all state survives) and waits until it is ready. It is a no-op if it is running.
func (e *Env) StartAPIServer(ctx context.Context) error {
	e.mu.Lock()
	running := e.apiserver != nil
	e.mu.Unlock()
	if running {
		return nil
	}
	return e.startAPIServer(ctx)
}

// Stop stops all processes (controller-manager, apiserver, then etcd), waits for them to
// exit, and removes Dir if Start created it. It is safe to call more than once.
func (e *Env) Stop() {
	e.mu.Lock()
	procs := []*proc{e.kcm, e.apiserver, e.etcd}
	e.kcm, e.apiserver, e.etcd = nil, nil, nil
	e.mu.Unlock()
	for _, p := range procs {
		if p != nil {
			p.stop(stopGrace)
		}
	}
	if e.httpClient != nil {
		e.httpClient.CloseIdleConnections()
	}
	if e.removeDir {
		_ = os.RemoveAll(e.dir)
	}
}

// Dir is the directory holding the environment's files and logs.
func (e *Env) Dir() string { return e.dir }

// Host is the apiserver's URL, https://127.0.0.1:PORT.
func (e *Env) Host() string { return e.host }

// Kubeconfig is the path of the admin kubeconfig (Dir/kubeconfig).
func (e *Env) Kubeconfig() string { return filepath.Join(e.dir, "kubeconfig") }

// RestConfig returns a new admin (system:masters) config; callers may modify it, e.g. to
// impersonate a restricted user.
func (e *Env) RestConfig() *rest.Config {
	return &rest.Config{
		Host:            e.host,
		BearerToken:     e.pki.adminToken,
		TLSClientConfig: rest.TLSClientConfig{CAData: append([]byte(nil), e.pki.caPEM...)},
		// Tests create many objects quickly; client-go's default 5 QPS would dominate their runtime.
		QPS:   100,
		Burst: 200,
	}
}

func (e *Env) writeKubeconfig() error {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["kubeenv"] = &clientcmdapi.Cluster{Server: e.host, CertificateAuthorityData: e.pki.caPEM}
	cfg.AuthInfos[adminUser] = &clientcmdapi.AuthInfo{Token: e.pki.adminToken}
	cfg.Contexts["kubeenv"] = &clientcmdapi.Context{Cluster: "kubeenv", AuthInfo: adminUser, Namespace: "default"}
	cfg.CurrentContext = "kubeenv"
	if err := clientcmd.WriteToFile(*cfg, e.Kubeconfig()); err != nil {
		return fmt.Errorf("kubeenv: writing kubeconfig: %w", err)
	}
	return nil
}
