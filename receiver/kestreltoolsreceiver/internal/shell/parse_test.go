package shell

import (
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseAllows(t *testing.T) {
	for in, want := range map[string]Command{
		"kubectl get pods -A -o wide":                              {"kubectl", "get", []string{"get", "pods", "-A", "-o", "wide"}},
		"kubectl get deploy checkout -n shop -oyaml":               {"kubectl", "get", []string{"get", "deploy", "checkout", "-n", "shop", "-oyaml"}},
		`kubectl get pods -o jsonpath='{.items[*].metadata.name}'`: {"kubectl", "get", []string{"get", "pods", "-o", "jsonpath={.items[*].metadata.name}"}},
		`kubectl get pods -o "custom-columns=NAME:.metadata.name"`: {"kubectl", "get", []string{"get", "pods", "-o", "custom-columns=NAME:.metadata.name"}},
		"kubectl -n shop describe deploy checkout":                 {"kubectl", "describe", []string{"-n", "shop", "describe", "deploy", "checkout"}},
		"kubectl logs web-1 -c app --previous --tail=100 --since 5m --timestamps": {"kubectl", "logs",
			[]string{"logs", "web-1", "-c", "app", "--previous", "--tail=100", "--since", "5m", "--timestamps"}},
		"kubectl auth can-i list pods":                        {"kubectl", "auth can-i", []string{"auth", "can-i", "list", "pods"}},
		"kubectl rollout status deploy/checkout -n x":         {"kubectl", "rollout status", []string{"rollout", "status", "deploy/checkout", "-n", "x"}},
		"kubectl top pod -A":                                  {"kubectl", "top", []string{"top", "pod", "-A"}},
		"kubectl get events -n shop --sort-by=.lastTimestamp": {"kubectl", "get", []string{"get", "events", "-n", "shop", "--sort-by=.lastTimestamp"}},
		"hubble observe --namespace shop --verdict DROPPED --last 50 -o json": {"hubble", "observe",
			[]string{"observe", "--namespace", "shop", "--verdict", "DROPPED", "--last", "50", "-o", "json"}},
	} {
		t.Run(in, func(t *testing.T) {
			got, err := Parse(in, 16<<10, Verbs())
			require.NoError(t, err)
			assert.Equal(t, want, got)
		})
	}
}

// Each hostile or unsupported command is refused with its own reason, before anything runs.
func TestParseRefuses(t *testing.T) {
	for in, reason := range map[string]string{
		"kubectl get pods; rm -rf /":                    "one command per entry",
		"kubectl get pods && rm -rf /":                  "command lists",
		"kubectl get pods || true":                      "command lists",
		"$(curl x)":                                     "command substitution",
		"kubectl get pods `curl x`":                     "command substitution",
		"kubectl get $(curl x)":                         "command substitution",
		"kubectl get pods | sh":                         "pipes",
		"kubectl get pods > /tmp/x":                     "redirections",
		"kubectl get pods < /etc/passwd":                "redirections",
		"kubectl get pods &":                            "background jobs",
		"(kubectl get pods)":                            "subshells",
		"{ kubectl get pods; }":                         "command blocks",
		"KUBECONFIG=/x kubectl get pods":                "environment assignments",
		"kubectl get pods -l app=$APP":                  "parameter expansion",
		`kubectl get pods -l "app=$APP"`:                "inside double quotes",
		"kubectl get pods <(cat /etc/passwd)":           "process substitution",
		"kubectl get pod*":                              "glob",
		"kubectl get {pods,secrets}":                    "brace expansion",
		"kubectl get ~/x":                               "tilde",
		"kubectl delete pod x":                          "not allowed",
		"kubectl exec x -- sh":                          "not allowed",
		"kubectl apply -f x.yaml":                       "not allowed",
		"kubectl edit deploy x":                         "not allowed",
		"kubectl cp x:/etc/passwd .":                    "not allowed",
		"kubectl port-forward x 80":                     "not allowed",
		"kubectl proxy":                                 "not allowed",
		"kubectl run x --image=y":                       "not allowed",
		"kubectl get pods -w":                           "flag -w is not allowed",
		"kubectl get pods --watch":                      "flag --watch is not allowed",
		"kubectl get -f pods.yaml":                      "flag -f is not allowed",
		"kubectl get pods --kubeconfig /x":              "flag --kubeconfig is not allowed",
		"kubectl get pods --token abc":                  "flag --token is not allowed",
		"kubectl get pods --as admin":                   "flag --as is not allowed",
		"kubectl get --raw /api/v1/secrets":             "flag --raw is not allowed",
		"kubectl get pods -o jsonpath-file=/etc/passwd": "reads a local file",
		"kubectl get pods -o go-template={{.}}":         "not allowed",
		"kubectl logs x -f":                             "flag -f is not allowed",
		"kubectl cluster-info dump":                     "dump",
		"cilium status":                                 "not allowed",
		"helm list":                                     "not allowed",
		"curl http://x":                                 "not allowed",
		"bash -c 'kubectl get pods'":                    "not allowed",
		"rm -rf /":                                      "not allowed",
		"/usr/bin/kubectl get pods":                     "not allowed",
		"hubble observe --follow":                       "not allowed",
		"":                                              "empty",
		"kubectl get pods\nrm -rf /":                    "one command per entry",
		"kubectl get 'pods":                             "not a valid command line",
	} {
		t.Run(in, func(t *testing.T) {
			_, err := Parse(in, 16<<10, Verbs())
			require.ErrorIs(t, err, ErrRefused)
			assert.Contains(t, err.Error(), reason)
		})
	}
	_, err := Parse("kubectl get pods "+strings.Repeat("x", 1<<20), 16<<10, Verbs())
	require.ErrorContains(t, err, "at most 16384 are accepted")
}

// A narrowed allowlist refuses what it leaves out and lists what it allows.
func TestParseNarrowed(t *testing.T) {
	_, err := Parse("kubectl logs x", 4096, []string{"kubectl get"})
	require.ErrorContains(t, err, `"kubectl logs" is not allowed; allowed: kubectl get`)
	_, err = Parse("kubectl get pods", 4096, []string{"kubectl get"})
	require.NoError(t, err)
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"kubectl get pods -A -o wide", "kubectl get pods; rm -rf /", "$(curl x)", "`id`",
		"kubectl get pods | sh", "KUBECONFIG=/x kubectl get pods", "kubectl auth can-i list pods",
		`kubectl get pods -o jsonpath='{.items[*]}'`, "hubble observe --last 5 -o json", "kubectl -n x logs y -c z",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		cmd, err := Parse(s, 16<<10, Verbs())
		if err != nil {
			if !errors.Is(err, ErrRefused) {
				t.Fatalf("error %v is not a refusal", err)
			}
			return
		}
		// Whatever passes runs one of our programs' allowed verbs, with no shell syntax left
		// in a form a shell would act on.
		if cmd.Program != "kubectl" && cmd.Program != "hubble" {
			t.Fatalf("program %q passed", cmd.Program)
		}
		assert.Contains(t, Verbs(), cmd.String())
		for _, bad := range []string{"; ", "&&", "||", "$(", "`", "\n"} {
			if strings.Contains(s, bad) && !quotedOnly(s, bad) {
				t.Fatalf("%q passed with %q", s, bad)
			}
		}
	})
}

// quotedOnly says whether every occurrence of bad in s is inside single quotes.
func quotedOnly(s, bad string) bool {
	in := false
	for i := 0; i < len(s); i++ {
		if s[i] == '\'' {
			in = !in
			continue
		}
		if !in && strings.HasPrefix(s[i:], bad) {
			return false
		}
	}
	return true
}
