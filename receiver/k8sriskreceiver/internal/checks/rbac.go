package checks

import (
	"fmt"
	"slices"
	"strings"

	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/component-helpers/auth/rbac/validation"

	"github.com/kestrelai/otelcol-kestrel/internal/k8scache"
	"github.com/kestrelai/otelcol-kestrel/internal/schema"
)

var (
	rbacRoleKinds    = []string{KindRole, KindClusterRole}
	rbacBindingKinds = []string{KindRoleBinding, KindClusterRoleBinding}
	roleResources    = []*k8scache.Resource{k8scache.Roles, k8scache.ClusterRoles}
)

// rule is one permission, in the form RBAC's own coverage check takes.
func rule(group, resource string, verbs ...string) rbacv1.PolicyRule {
	return rbacv1.PolicyRule{APIGroups: []string{group}, Resources: []string{resource}, Verbs: verbs}
}

// Dangerous permissions, each as the rules any of which grants it.
var (
	readSecrets = []rbacv1.PolicyRule{rule("", "secrets", "get"), rule("", "secrets", "list"), rule("", "secrets", "watch")}
	createPods  = []rbacv1.PolicyRule{rule("", "pods", "create")}
	// createWorkloads also creates pods, through a controller.
	createWorkloads = []rbacv1.PolicyRule{
		rule("apps", "deployments", "create"), rule("apps", "daemonsets", "create"), rule("apps", "statefulsets", "create"),
		rule("apps", "replicasets", "create"), rule("batch", "jobs", "create"), rule("batch", "cronjobs", "create"),
	}
	execPods   = []rbacv1.PolicyRule{rule("", "pods/exec", "create"), rule("", "pods/exec", "get"), rule("", "pods/attach", "create"), rule("", "pods/attach", "get")}
	escalation = []rbacv1.PolicyRule{
		rule("rbac.authorization.k8s.io", "roles", "bind"), rule("rbac.authorization.k8s.io", "clusterroles", "bind"),
		rule("rbac.authorization.k8s.io", "roles", "escalate"), rule("rbac.authorization.k8s.io", "clusterroles", "escalate"),
		rule("", "users", "impersonate"), rule("", "groups", "impersonate"), rule("", "serviceaccounts", "impersonate"),
		rule("", "serviceaccounts/token", "create"), rule("", "nodes/proxy", "get"), rule("", "nodes/proxy", "create"),
	}
	everything = []rbacv1.PolicyRule{rule("*", "*", "*")}
)

// The checks of Roles, ClusterRoles and their bindings. Kubernetes' own defaults (system:*
// and the bootstrapped roles) are left out.
var rbacChecks = []*Check{
	{
		ID: "security.rbac-wildcard", Title: "Wildcard in a role", Pillar: Security, Severity: Medium,
		Remediation: "List the resources and verbs the role needs instead of \"*\".",
		Kubescape:   []string{"C-0187"}, CIS: []string{"5.1.3"},
		Kinds: rbacRoleKinds, Eval: roleCheck(func(r *rbacv1.PolicyRule) bool {
			return slices.Contains(r.Verbs, "*") || slices.Contains(r.Resources, "*")
		}),
	},
	{
		ID: "security.rbac-secrets-access", Title: "Role reads Secrets", Pillar: Security, Severity: High,
		Remediation: "Grant get on the named Secrets the subject needs (resourceNames), not get, list or watch on all of them.",
		Kubescape:   []string{"C-0186", "C-0015"}, CIS: []string{"5.1.2"},
		Kinds: rbacRoleKinds, Eval: roleCheck(grants(readSecrets)),
	},
	{
		ID: "security.rbac-pod-exec", Title: "Role can exec into pods", Pillar: Security, Severity: High,
		Remediation: "Remove pods/exec and pods/attach from the role; give break-glass access to people, not workloads.",
		Polaris:     []string{"clusterrolePodExecAttach", "rolePodExecAttach"}, Kubescape: []string{"C-0002"},
		Kinds: rbacRoleKinds, Eval: roleCheck(grants(execPods)),
	},
	{
		ID: "security.rbac-escalation", Title: "Role can escalate privileges", Pillar: Security, Severity: High,
		Remediation: "Remove bind, escalate and impersonate, serviceaccounts/token create and nodes/proxy from the role.",
		Kubescape:   []string{"C-0191", "C-0065"}, CIS: []string{"5.1.8"},
		Kinds: rbacRoleKinds, Eval: roleCheck(grants(escalation)),
	},
	{
		ID: "security.rbac-create-pods", Title: "Role can create pods", Pillar: Security, Severity: Medium,
		Remediation: "Let controllers create pods; a subject that creates pods can mount any ServiceAccount of the namespace.",
		Kubescape:   []string{"C-0188"}, CIS: []string{"5.1.4"},
		Kinds: rbacRoleKinds, Eval: roleCheck(grants(createPods)),
	},
	{
		ID: "security.rbac-cluster-admin-binding", Title: "cluster-admin granted", Pillar: Security, Severity: Critical,
		Remediation: "Bind a role with only the permissions the subjects need instead of cluster-admin (or a role with *.*.*).",
		Polaris:     []string{"clusterrolebindingClusterAdmin", "rolebindingClusterAdminClusterRole", "rolebindingClusterAdminRole"},
		Kubescape:   []string{"C-0185", "C-0035"}, CIS: []string{"5.1.1"},
		Kinds: rbacBindingKinds, Needs: roleResources, Eval: clusterAdminBinding,
	},
}

func grants(perms []rbacv1.PolicyRule) func(r *rbacv1.PolicyRule) bool {
	return func(r *rbacv1.PolicyRule) bool { return coversAny([]rbacv1.PolicyRule{*r}, perms) }
}

func coversAny(rules, perms []rbacv1.PolicyRule) bool {
	for _, p := range perms {
		if ok, _ := validation.Covers(rules, []rbacv1.PolicyRule{p}); ok {
			return true
		}
	}
	return false
}

// roleCheck fails a role with rules for which bad is true, listing them.
func roleCheck(bad func(r *rbacv1.PolicyRule) bool) func(v *View, s *Subject) Outcome {
	return func(_ *View, s *Subject) Outcome {
		if isSystem(s.Meta) {
			return notApplicable()
		}
		var rules []rbacv1.PolicyRule
		switch o := s.Obj.(type) {
		case *rbacv1.Role:
			rules = o.Rules
		case *rbacv1.ClusterRole:
			rules = o.Rules
		}
		var ev []schema.RiskEvidence
		for i := range rules {
			if bad(&rules[i]) {
				ev = append(ev, evidence(fmt.Sprintf("rules[%d]", i), ruleString(&rules[i])))
			}
		}
		return outcomeOf(ev)
	}
}

func ruleString(r *rbacv1.PolicyRule) string {
	var b strings.Builder
	b.WriteString("verbs=" + strings.Join(r.Verbs, ","))
	if len(r.APIGroups) > 0 {
		b.WriteString(" apiGroups=" + strings.Join(quoteEmpty(r.APIGroups), ","))
	}
	if len(r.Resources) > 0 {
		b.WriteString(" resources=" + strings.Join(r.Resources, ","))
	}
	if len(r.ResourceNames) > 0 {
		b.WriteString(" resourceNames=" + strings.Join(r.ResourceNames, ","))
	}
	if len(r.NonResourceURLs) > 0 {
		b.WriteString(" nonResourceURLs=" + strings.Join(r.NonResourceURLs, ","))
	}
	return b.String()
}

func quoteEmpty(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		if s == "" {
			s = `""`
		}
		out[i] = s
	}
	return out
}

func clusterAdminBinding(v *View, s *Subject) Outcome {
	if isSystem(s.Meta) {
		return notApplicable()
	}
	var ref rbacv1.RoleRef
	var subjects []rbacv1.Subject
	switch o := s.Obj.(type) {
	case *rbacv1.RoleBinding:
		ref, subjects = o.RoleRef, o.Subjects
	case *rbacv1.ClusterRoleBinding:
		ref, subjects = o.RoleRef, o.Subjects
	}
	rules, _ := v.roleRules(s.Object.Namespace, ref)
	if ref.Kind != KindClusterRole || ref.Name != "cluster-admin" {
		if ok, _ := validation.Covers(rules, everything); !ok {
			return pass()
		}
	}
	ev := []schema.RiskEvidence{evidence("roleRef", ref.Kind+"/"+ref.Name)}
	for i, sub := range subjects {
		ev = append(ev, evidence(fmt.Sprintf("subjects[%d]", i), subjectString(sub)))
	}
	return outcomeOf(ev)
}

func subjectString(s rbacv1.Subject) string {
	if s.Namespace != "" {
		return s.Kind + "/" + s.Namespace + "/" + s.Name
	}
	return s.Kind + "/" + s.Name
}

// roleRules returns the rules a roleRef of a binding in namespace ns refers to, and whether
// the role exists.
func (v *View) roleRules(ns string, ref rbacv1.RoleRef) ([]rbacv1.PolicyRule, bool) {
	if ref.Kind == KindClusterRole {
		obj, ok := v.Store(k8scache.ClusterRoles).Get("", ref.Name)
		if !ok {
			return nil, false
		}
		return obj.(*rbacv1.ClusterRole).Rules, true
	}
	obj, ok := v.Store(k8scache.Roles).Get(ns, ref.Name)
	if !ok {
		return nil, false
	}
	return obj.(*rbacv1.Role).Rules, true
}

// grant is one binding that gives a subject rules, and where: cluster-wide (namespace "") or
// in one namespace.
type grant struct {
	binding   schema.RiskObject
	roleRef   rbacv1.RoleRef
	namespace string
	rules     []rbacv1.PolicyRule
}

// rbacIndex is the bindings by the subject they bind, built once per RBAC generation.
type rbacIndex struct {
	bySubject map[rbacv1.Subject][]grant
}

func (v *View) rbacIndex() *rbacIndex {
	if v.rbac != nil {
		return v.rbac
	}
	idx := &rbacIndex{bySubject: map[rbacv1.Subject][]grant{}}
	add := func(b schema.RiskObject, ns string, ref rbacv1.RoleRef, subjects []rbacv1.Subject) {
		rules, ok := v.roleRules(ns, ref)
		if !ok || len(rules) == 0 {
			return
		}
		g := grant{binding: b, roleRef: ref, namespace: ns, rules: rules}
		for _, sub := range subjects {
			if sub.Kind == rbacv1.ServiceAccountKind && sub.Namespace == "" {
				sub.Namespace = ns // a RoleBinding's ServiceAccounts default to its namespace
			}
			sub.APIGroup = ""
			idx.bySubject[sub] = append(idx.bySubject[sub], g)
		}
	}
	for _, obj := range v.Store(k8scache.ClusterRoleBindings).List() {
		b := obj.(*rbacv1.ClusterRoleBinding)
		add(schema.RiskObject{APIVersion: "rbac.authorization.k8s.io/v1", Kind: KindClusterRoleBinding, Name: b.Name, UID: string(b.UID)}, "", b.RoleRef, b.Subjects)
	}
	for _, obj := range v.Store(k8scache.RoleBindings).List() {
		b := obj.(*rbacv1.RoleBinding)
		add(schema.RiskObject{APIVersion: "rbac.authorization.k8s.io/v1", Kind: KindRoleBinding, Namespace: b.Namespace, Name: b.Name, UID: string(b.UID)}, b.Namespace, b.RoleRef, b.Subjects)
	}
	v.rbac = idx
	return idx
}

// grantsOf returns the bindings that apply to a ServiceAccount: its own, its username's,
// and those of the groups every ServiceAccount (of its namespace) and every authenticated
// user belongs to.
func (v *View) grantsOf(ns, sa string) []grant {
	idx := v.rbacIndex()
	return slices.Concat(
		idx.bySubject[rbacv1.Subject{Kind: rbacv1.ServiceAccountKind, Namespace: ns, Name: sa}],
		idx.bySubject[rbacv1.Subject{Kind: rbacv1.UserKind, Name: "system:serviceaccount:" + ns + ":" + sa}],
		idx.bySubject[rbacv1.Subject{Kind: rbacv1.GroupKind, Name: "system:serviceaccounts"}],
		idx.bySubject[rbacv1.Subject{Kind: rbacv1.GroupKind, Name: "system:serviceaccounts:" + ns}],
		idx.bySubject[rbacv1.Subject{Kind: rbacv1.GroupKind, Name: "system:authenticated"}],
	)
}

// powers returns the evidence that a ServiceAccount can read Secrets in every namespace or
// create pods (directly or through a workload controller), one entry per binding that
// grants it; empty when it can do neither.
func (v *View) powers(ns, sa string) []schema.RiskEvidence {
	var ev []schema.RiskEvidence
	for _, g := range v.grantsOf(ns, sa) {
		where := "in namespace " + g.namespace
		if g.namespace == "" {
			where = "in all namespaces"
		}
		bind := g.binding.Kind + " " + g.binding.Name
		if g.binding.Namespace != "" {
			bind = g.binding.Kind + " " + g.binding.Namespace + "/" + g.binding.Name
		}
		switch {
		case g.namespace == "" && coversAny(g.rules, readSecrets):
			ev = append(ev, evidence(bind, g.roleRef.Kind+"/"+g.roleRef.Name+" reads Secrets "+where))
		case coversAny(g.rules, createPods):
			ev = append(ev, evidence(bind, g.roleRef.Kind+"/"+g.roleRef.Name+" creates pods "+where))
		case coversAny(g.rules, createWorkloads):
			ev = append(ev, evidence(bind, g.roleRef.Kind+"/"+g.roleRef.Name+" creates workloads (and so pods) "+where))
		}
	}
	return ev
}
