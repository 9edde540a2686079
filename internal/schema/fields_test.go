package schema

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"go.opentelemetry.io/collector/pdata/pcommon"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/kestrelai/otelcol-kestrel/internal/k8scache/slim"
)

// TestEqualAgreesWithPut: Table.Equal, which the receiver diffs updates with, says two
// objects are equal exactly when the attributes Put writes of them are.
func TestEqualAgreesWithPut(t *testing.T) {
	created := metav1.NewTime(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	base := corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name: "web-x", Namespace: "prod", UID: "p-uid", CreationTimestamp: created,
			Labels:          map[string]string{"app": "web"},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "web", UID: "rs", Controller: ptr.To(true)}},
		},
		Status: corev1.PodStatus{Phase: corev1.PodRunning, PodIP: "10.0.0.7"},
	}
	variants := map[string]func(p *corev1.Pod){
		"same":                     func(*corev1.Pod) {},
		"resourceVersion":          func(p *corev1.Pod) { p.ResourceVersion = "7" },
		"status condition message": func(p *corev1.Pod) { p.Status.Message = "x" },
		"label added":              func(p *corev1.Pod) { p.Labels["rev"] = "1" },
		"label value":              func(p *corev1.Pod) { p.Labels["app"] = "api" },
		"labels nil":               func(p *corev1.Pod) { p.Labels = nil },
		"phase":                    func(p *corev1.Pod) { p.Status.Phase = corev1.PodFailed },
		"ip gone":                  func(p *corev1.Pod) { p.Status.PodIP = "" },
		"ready": func(p *corev1.Pod) {
			p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}
		},
		"owner controller": func(p *corev1.Pod) { p.OwnerReferences[0].Controller = nil },
		"owner added": func(p *corev1.Pod) {
			p.OwnerReferences = append(p.OwnerReferences, metav1.OwnerReference{Kind: "Node", Name: "n"})
		},
		"owners none":          func(p *corev1.Pod) { p.OwnerReferences = nil },
		"created sub-second":   func(p *corev1.Pod) { p.CreationTimestamp = metav1.NewTime(created.Add(300 * time.Millisecond)) },
		"created other zone":   func(p *corev1.Pod) { p.CreationTimestamp = metav1.NewTime(created.In(time.FixedZone("x", 3600))) },
		"created a second on":  func(p *corev1.Pod) { p.CreationTimestamp = metav1.NewTime(created.Add(time.Second)) },
		"created unset":        func(p *corev1.Pod) { p.CreationTimestamp = metav1.Time{} },
		"node name (no field)": func(p *corev1.Pod) { p.Spec.NodeName = "worker-1" },
		"name":                 func(p *corev1.Pod) { p.Name = "web-y" },
	}
	for name, change := range variants {
		changed := base.DeepCopy()
		change(changed)
		// The cache holds pods as slim.Pod, which is what the table reads.
		p, q := slim.NewPod(&base), slim.NewPod(changed)
		a, b := pcommon.NewMap(), pcommon.NewMap()
		PodFields.Put(a, p)
		PodFields.Put(b, q)
		assert.Equal(t, a.Equal(b), PodFields.Equal(p, q), name)
		assert.Equal(t, a.Equal(b), PodFields.Equal(q, p), name)
	}

	svc := corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "prod", UID: "s"}, Spec: corev1.ServiceSpec{
		ExternalIPs: []string{"1.2.3.4"},
		Ports:       []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromInt32(8080)}},
	}}
	for name, change := range map[string]func(s *corev1.Service){
		"same":              func(*corev1.Service) {},
		"target port name":  func(s *corev1.Service) { s.Spec.Ports[0].TargetPort = intstr.FromString("http") },
		"port":              func(s *corev1.Service) { s.Spec.Ports[0].Port = 81 },
		"external ips":      func(s *corev1.Service) { s.Spec.ExternalIPs = []string{"1.2.3.5"} },
		"external ips nil":  func(s *corev1.Service) { s.Spec.ExternalIPs = nil },
		"annotation":        func(s *corev1.Service) { s.Annotations = map[string]string{"a": "b"} },
		"annotations empty": func(s *corev1.Service) { s.Annotations = map[string]string{} },
	} {
		s := svc.DeepCopy()
		change(s)
		a, b := pcommon.NewMap(), pcommon.NewMap()
		ServiceFields.Put(a, &svc)
		ServiceFields.Put(b, s)
		assert.Equal(t, a.Equal(b), ServiceFields.Equal(&svc, s), name)
	}
	assert.False(t, PodFields.Equal(slim.NewPod(&base), nil))
	assert.True(t, PodFields.Equal(nil, nil))
}
