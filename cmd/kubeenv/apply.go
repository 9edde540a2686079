package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/tools/clientcmd"
)

// manifest is one object to apply and where it was read, for error messages.
type manifest struct {
	obj    *unstructured.Unstructured
	source string // FILE#DOC
}

// apply server-side applies the objects in files (files or directories) to the cluster of
// kubeconfig ($KUBECONFIG or ~/.kube/config when empty). It is kubectl apply
// --server-side --force-conflicts without kubectl, which a fresh machine may not have.
func apply(ctx context.Context, kubeconfig, fieldManager string, files []string, out io.Writer) error {
	loader := clientcmd.NewDefaultClientConfigLoadingRules()
	loader.ExplicitPath = kubeconfig
	cc := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(loader, &clientcmd.ConfigOverrides{})
	cfg, err := cc.ClientConfig()
	if err != nil {
		return fmt.Errorf("kubeenv: %w", err)
	}
	defaultNS, _, err := cc.Namespace()
	if err != nil {
		return fmt.Errorf("kubeenv: %w", err)
	}
	ms, err := readManifests(files)
	if err != nil {
		return err
	}
	return applyManifests(ctx, cfg, defaultNS, fieldManager, ms, time.Now(), out)
}

// readManifests decodes every YAML or JSON document of the files; a directory stands for
// its *.yaml, *.yml and *.json files in name order. Empty documents are skipped.
func readManifests(paths []string) ([]manifest, error) {
	var files []string
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("kubeenv: %w", err)
		}
		if !st.IsDir() {
			files = append(files, p)
			continue
		}
		entries, err := os.ReadDir(p) // sorted by name
		if err != nil {
			return nil, fmt.Errorf("kubeenv: %w", err)
		}
		n := len(files)
		for _, e := range entries {
			if !e.IsDir() && slices.Contains([]string{".yaml", ".yml", ".json"}, filepath.Ext(e.Name())) {
				files = append(files, filepath.Join(p, e.Name()))
			}
		}
		if len(files) == n {
			return nil, fmt.Errorf("kubeenv: no .yaml, .yml or .json files in %s", p)
		}
	}
	var ms []manifest
	for _, f := range files {
		data, err := os.ReadFile(f) //nolint:gosec // the manifests the user named with -f
		if err != nil {
			return nil, fmt.Errorf("kubeenv: %w", err)
		}
		r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
		for doc := 1; ; doc++ {
			raw, err := r.Read()
			if errors.Is(err, io.EOF) {
				break
			}
			source := fmt.Sprintf("%s#%d", f, doc)
			if err != nil {
				return nil, fmt.Errorf("kubeenv: %s: %w", source, err)
			}
			js, err := utilyaml.ToJSON(raw)
			if err != nil {
				return nil, fmt.Errorf("kubeenv: %s: %w", source, err)
			}
			if string(bytes.TrimSpace(js)) == "null" { // only comments or "---"
				continue
			}
			obj := &unstructured.Unstructured{}
			if err := obj.UnmarshalJSON(js); err != nil {
				return nil, fmt.Errorf("kubeenv: %s: %w", source, err)
			}
			if obj.GetName() == "" {
				return nil, fmt.Errorf("kubeenv: %s: %s has no metadata.name", source, obj.GetKind())
			}
			ms = append(ms, manifest{obj: obj, source: source})
		}
	}
	return ms, nil
}

// applyManifests applies ms in order, except that Namespaces go first so that a file
// may list a namespace after what it contains. Objects without a namespace go to
// defaultNS if their kind is namespaced. Every object is tried; the errors are joined.
func applyManifests(ctx context.Context, cfg *rest.Config, defaultNS, fieldManager string, ms []manifest, now time.Time, out io.Writer) error {
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return fmt.Errorf("kubeenv: %w", err)
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("kubeenv: %w", err)
	}
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(dc))
	nsKind := schema.GroupKind{Kind: "Namespace"}
	ms = slices.Clone(ms)
	slices.SortStableFunc(ms, func(a, b manifest) int {
		aNS, bNS := a.obj.GroupVersionKind().GroupKind() == nsKind, b.obj.GroupVersionKind().GroupKind() == nsKind
		switch {
		case aNS && !bNS:
			return -1
		case bNS && !aNS:
			return 1
		}
		return 0
	})

	var errs []error
	for _, m := range ms {
		obj := m.obj.DeepCopy()
		gvk := obj.GroupVersionKind()
		mapping, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
		if err != nil {
			errs = append(errs, fmt.Errorf("kubeenv: %s: %s %s: %w", m.source, gvk.Kind, obj.GetName(), err))
			continue
		}
		ri := dynamic.ResourceInterface(dyn.Resource(mapping.Resource))
		ref := gvk.Kind + " " + obj.GetName()
		if mapping.Scope.Name() == meta.RESTScopeNameNamespace {
			if obj.GetNamespace() == "" {
				obj.SetNamespace(defaultNS)
			}
			ri = dyn.Resource(mapping.Resource).Namespace(obj.GetNamespace())
			ref = gvk.Kind + " " + obj.GetNamespace() + "/" + obj.GetName()
		} else if obj.GetNamespace() != "" {
			errs = append(errs, fmt.Errorf("kubeenv: %s: %s is cluster-scoped but has metadata.namespace %q", m.source, ref, obj.GetNamespace()))
			continue
		}
		stampEvent(obj, now)
		// Force takes over fields another manager set (e.g. replicas after kubectl scale),
		// so applying the files again restores what they declare.
		if _, err := ri.Apply(ctx, obj.GetName(), obj, metav1.ApplyOptions{FieldManager: fieldManager, Force: true}); err != nil {
			errs = append(errs, fmt.Errorf("kubeenv: %s: applying %s: %w", m.source, ref, err))
			continue
		}
		fmt.Fprintf(out, "applied %s\n", ref)
	}
	return errors.Join(errs...)
}

// stampEvent dates a core/v1 Event that carries no time at all as happening now: a
// manifest cannot say "now", and an Event without a time has no place on a timeline.
func stampEvent(obj *unstructured.Unstructured, now time.Time) {
	if obj.GroupVersionKind() != (schema.GroupVersionKind{Version: "v1", Kind: "Event"}) {
		return
	}
	for _, f := range []string{"firstTimestamp", "lastTimestamp", "eventTime"} {
		if v, ok := obj.Object[f]; ok && v != nil {
			return
		}
	}
	ts := now.UTC().Format(time.RFC3339)
	obj.Object["firstTimestamp"] = ts
	obj.Object["lastTimestamp"] = ts
}
