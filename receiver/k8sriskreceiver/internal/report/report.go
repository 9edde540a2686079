// Package report writes the risk receiver's findings as wgpolicyk8s.io/v1alpha2
// PolicyReports (one per namespace) and a ClusterPolicyReport (cluster-scoped objects),
// the format Kyverno, Kubescape and Trivy Operator write and Policy Reporter shows. Each
// report is applied whole with server-side apply, so it always equals the findings.
package report // import "github.com/kestrelai/otelcol-kestrel/receiver/k8sriskreceiver/internal/report"

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// Names of the reports and of what writes them.
const (
	Name         = "kestrel-risk"
	Source       = "kestrel"
	FieldManager = "otelcol-kestrel-risk"
	// ManagedByLabel marks our reports, so that stale ones can be found.
	ManagedByLabel = "app.kubernetes.io/managed-by"
	ManagedBy      = "otelcol-kestrel"
	// OmittedAnnotation says how many results max_results left out.
	OmittedAnnotation = "risk.kestrel.ai/results-omitted"
)

// The report resources.
var (
	GroupVersion         = schema.GroupVersion{Group: "wgpolicyk8s.io", Version: "v1alpha2"}
	PolicyReports        = GroupVersion.WithResource("policyreports")
	ClusterPolicyReports = GroupVersion.WithResource("clusterpolicyreports")
	// CRDs are the CustomResourceDefinitions that must exist.
	CRDs = []string{"policyreports.wgpolicyk8s.io", "clusterpolicyreports.wgpolicyk8s.io"}
)

// Result is one entry of a report's results, with the API's field names.
type Result struct {
	Source     string                   `json:"source"`
	Policy     string                   `json:"policy"`
	Rule       string                   `json:"rule,omitempty"`
	Category   string                   `json:"category,omitempty"`
	Severity   string                   `json:"severity,omitempty"`
	Timestamp  Timestamp                `json:"timestamp"`
	Result     string                   `json:"result"`
	Scored     bool                     `json:"scored"`
	Resources  []corev1.ObjectReference `json:"resources,omitempty"`
	Message    string                   `json:"message,omitempty"`
	Properties map[string]string        `json:"properties,omitempty"`
}

// Timestamp is metav1.Timestamp, which the results carry.
type Timestamp struct {
	Seconds int64 `json:"seconds"`
	Nanos   int32 `json:"nanos"`
}

// Summary counts the results by outcome; Pass counts the checks that passed, which are not
// listed.
type Summary struct {
	Pass  int `json:"pass"`
	Fail  int `json:"fail"`
	Warn  int `json:"warn"`
	Error int `json:"error"`
	Skip  int `json:"skip"`
}

// Add counts one result.
func (s *Summary) Add(result string) {
	switch result {
	case "pass":
		s.Pass++
	case "fail":
		s.Fail++
	case "warn":
		s.Warn++
	case "error":
		s.Error++
	case "skip":
		s.Skip++
	}
}

type policyReport struct {
	APIVersion string     `json:"apiVersion"`
	Kind       string     `json:"kind"`
	Metadata   reportMeta `json:"metadata"`
	Summary    Summary    `json:"summary"`
	Results    []Result   `json:"results"`
}

type reportMeta struct {
	Name        string            `json:"name"`
	Namespace   string            `json:"namespace,omitempty"`
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

var severityRank = map[string]int{"critical": 0, "high": 1, "medium": 2, "low": 3, "info": 4}

// Build returns the report of namespace ns (the ClusterPolicyReport for ""): the results,
// most severe first and at most maxResults of them, and the summary of all. It sorts
// results in place.
func Build(ns string, results []Result, pass, maxResults int) *unstructured.Unstructured {
	slices.SortFunc(results, func(a, b Result) int {
		return cmp.Or(
			cmp.Compare(severityRank[a.Severity], severityRank[b.Severity]),
			cmp.Compare(a.Policy, b.Policy),
			cmp.Compare(resourceKey(a), resourceKey(b)),
		)
	})
	sum := Summary{Pass: pass}
	for i := range results {
		sum.Add(results[i].Result)
	}
	r := policyReport{
		APIVersion: GroupVersion.String(), Kind: "PolicyReport",
		Metadata: reportMeta{Name: Name, Namespace: ns, Labels: map[string]string{ManagedByLabel: ManagedBy}},
		Summary:  sum, Results: results,
	}
	if ns == "" {
		r.Kind = "ClusterPolicyReport"
	}
	if len(results) > maxResults {
		r.Results = results[:maxResults]
		r.Metadata.Annotations = map[string]string{OmittedAnnotation: strconv.Itoa(len(results) - maxResults)}
	}
	if r.Results == nil {
		r.Results = []Result{}
	}
	obj, err := runtime.DefaultUnstructuredConverter.ToUnstructured(&r)
	if err != nil {
		// The types above always convert.
		panic(fmt.Sprintf("report: %v", err))
	}
	return &unstructured.Unstructured{Object: obj}
}

func resourceKey(r Result) string {
	if len(r.Resources) == 0 {
		return ""
	}
	o := r.Resources[0]
	return o.Namespace + "/" + o.Kind + "/" + o.Name
}
