package main

import (
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	cloudv1 "github.com/kestrelai/otelcol-kestrel/api/cloud/v1"
	"github.com/kestrelai/otelcol-kestrel/internal/devcloud"
)

func TestStatusRepeats(t *testing.T) {
	rollout := func(uid, status string, ts int64, a cloudv1.Action) devcloud.Record {
		return devcloud.Record{Payload: &cloudv1.WorkloadRolloutStatus{Uid: uid, RolloutStatus: status, StatusTimestamp: timestamppb.New(time.Unix(ts, 0)), Action: a}}
	}
	recs := []devcloud.Record{
		{Payload: &cloudv1.Pod{Uid: "p"}},
		rollout("d1", "Progressing", 1, cloudv1.Action_ACTION_CREATE),
		rollout("d1", "Progressing", 2, cloudv1.Action_ACTION_UPDATE), // a repeat: only time and action differ
		rollout("d2", "Progressing", 1, cloudv1.Action_ACTION_UPDATE), // another object
		rollout("d1", "TimedOut", 1, cloudv1.Action_ACTION_UPDATE),
		{Payload: &cloudv1.InventoryCommit{}},
	}
	status, repeats := statusRepeats(recs)
	if status != 4 || repeats != 1 {
		t.Fatalf("status %d repeats %d, want 4 and 1", status, repeats)
	}
	if got := commitIndex(recs); got != 5 {
		t.Fatalf("commitIndex %d, want 5", got)
	}
}

func TestCountRequests(t *testing.T) {
	raw := []byte(`# HELP apiserver_request_total x
apiserver_request_total{code="200",component="apiserver",group="",resource="pods",scope="cluster",subresource="",verb="LIST",version="v1"} 3
apiserver_request_total{code="200",component="apiserver",group="apps",resource="deployments",scope="cluster",subresource="",verb="LIST",version="v1"} 2
apiserver_request_total{code="200",component="apiserver",group="",resource="pods",scope="cluster",subresource="",verb="WATCH",version="v1"} 7
apiserver_request_total{code="200",component="apiserver",group="",resource="pods",scope="resource",subresource="",verb="PATCH",version="v1"} 1000
apiserver_request_duration_seconds_count{verb="LIST"} 99
`)
	lists, watches, err := countRequests(raw)
	if err != nil || lists != 5 || watches != 7 {
		t.Fatalf("lists %d watches %d err %v, want 5, 7", lists, watches, err)
	}
}

func TestInventoryReportShowsTheFloors(t *testing.T) {
	sc := &scenario{name: "inventory 5,000 pods", inventoryPods: 5000}
	run := func(informer, watch time.Duration) result {
		return result{scenario: sc.name, inv: &inventoryResult{
			cpuPerRound: []time.Duration{300 * time.Millisecond},
			floors: []floorResult{
				{name: floors[0].name, cpu: []time.Duration{informer}, anon: 60 << 20, peakRSS: 100 << 20},
				{name: floors[1].name, cpu: []time.Duration{watch}, anon: 9 << 20, peakRSS: 50 << 20},
			},
		}}
	}
	var b strings.Builder
	writeInventoryReport(&b, []*scenario{sc}, []result{run(310*time.Millisecond, 240*time.Millisecond), run(330*time.Millisecond, 400*time.Millisecond)})
	out := b.String()
	for _, want := range []string{
		"| 0.310–0.330 / 60.0; 0.240–0.400 / 9.0 |",
		"client-go informer alone 0.310 CPU-s per 1,000 pod updates, RssAnon 60.0 MiB (peak RSS 100.0 MiB); client-go watch alone 0.240",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
}

func TestSnapshotContents(t *testing.T) {
	recs := []devcloud.Record{
		{Payload: &cloudv1.Namespace{Uid: "n"}},
		{Payload: &cloudv1.Pod{Uid: "p1"}},
		{Payload: &cloudv1.Pod{Uid: "p2"}},
		{Payload: &cloudv1.Pod{Uid: "p1"}}, // the same pod again
		{Payload: &cloudv1.Workload{Uid: "p1"}},
		{},
	}
	kinds, repeats := snapshotContents(recs)
	if kinds != "Namespace 1, Pod 3, Workload 1" || repeats != 1 {
		t.Errorf("got %q, %d repeats; want \"Namespace 1, Pod 3, Workload 1\", 1", kinds, repeats)
	}
}
