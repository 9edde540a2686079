package logmap

import (
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	cloudv1 "github.com/kestrelai/otelcol-kestrel/api/cloud/v1"
)

// The payloads in examples/otlp are what users POST to the OTLP receiver to try the
// distribution; this keeps them mapping to what their README promises.
func TestExamples(t *testing.T) {
	t.Run("k8s-event.json", func(t *testing.T) {
		res := NewMapper(fixedNow).Map(readLogs(t, "../../examples/otlp/k8s-event.json"))
		require.Empty(t, res.Drops)
		assertPayloadsEqual(t, []proto.Message{&cloudv1.KubernetesEvent{
			Name:      "checkout-7d9f8b6c5-x2x4k.18a2b3c4d5e6f708",
			Namespace: "shop",
			Uid:       "5c9e0a41-7b2d-4e8f-a3c6-1d2e3f405162",
			EventType: "Warning",
			Reason:    "BackOff",
			Message:   "Back-off restarting failed container checkout in pod checkout-7d9f8b6c5-x2x4k_shop(0b1d2c7e-5f3a-4c61-9a8e-3f0c2d1b4e5a)",
			InvolvedObject: &cloudv1.ObjectReference{
				Kind:            "Pod",
				Namespace:       "shop",
				Name:            "checkout-7d9f8b6c5-x2x4k",
				Uid:             "0b1d2c7e-5f3a-4c61-9a8e-3f0c2d1b4e5a",
				ApiVersion:      "v1",
				ResourceVersion: "48213",
				FieldPath:       "spec.containers{checkout}",
			},
			Source:         &cloudv1.EventSource{Component: "kubelet", Host: "worker-1"},
			FirstTimestamp: ts("2026-01-01T00:00:00Z"),
			LastTimestamp:  ts("2026-01-01T00:05:00Z"),
			Count:          7,
			Action:         cloudv1.Action_ACTION_UPDATE,
		}}, payloads(res.Items))
	})
	t.Run("pod-logs.json", func(t *testing.T) {
		res := NewMapper(fixedNow).Map(readLogs(t, "../../examples/otlp/pod-logs.json"))
		require.Empty(t, res.Drops)
		assertPayloadsEqual(t, []proto.Message{&cloudv1.PodLogs{
			PodName:       "checkout-7d9f8b6c5-x2x4k",
			Namespace:     "shop",
			PodUid:        "0b1d2c7e-5f3a-4c61-9a8e-3f0c2d1b4e5a",
			ContainerName: "checkout",
			NodeName:      "worker-1",
			LogEntries: []*cloudv1.LogEntry{
				{Timestamp: ts("2026-01-01T00:00:00Z"), Message: "starting checkout service on :8080", Level: "INFO", LineNumber: 1},
				{Timestamp: ts("2026-01-01T00:00:01Z"), Message: "connecting to payments at payments.shop.svc:9000", Level: "INFO", LineNumber: 2},
				{
					Timestamp: ts("2026-01-01T00:00:02Z"), Message: "payment request failed", Level: "ERROR", LineNumber: 3,
					ErrorInfo: &cloudv1.LogErrorInfo{
						ErrorType:    "ConnectionException",
						ErrorMessage: "dial tcp 10.96.12.7:9000: connect: connection refused",
						StackTrace:   "main.charge(...)\n\t/app/payments.go:88\nmain.handleCheckout(...)\n\t/app/checkout.go:41",
					},
				},
			},
			CollectionTimestamp: timestamppb.New(clock),
			TotalLines:          3,
		}}, payloads(res.Items))
	})
}
