package apiread

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/kestrelai/otelcol-kestrel/receiver/kestreltoolsreceiver/internal/kubeclient"
)

// maxPathBytes bounds one api_path; real paths are far shorter.
const maxPathBytes = 8 << 10

// Accept headers: plain JSON, metadata only (metadata=true), and server-side tables (as=Table).
const (
	acceptJSON         = "application/json"
	acceptMetadataList = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json"
	acceptMetadata     = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,application/json"
	acceptTable        = "application/json;as=Table;g=meta.k8s.io;v=v1,application/json"
	acceptText         = "text/plain, application/json"
)

// nonResource are the paths outside api/ and apis/ that may be read.
var nonResource = map[string]bool{
	"api": true, "apis": true, "version": true, "openapi/v2": true,
	"healthz": true, "livez": true, "readyz": true,
}

// Request is a validated api_path.
type Request struct {
	// Path is the URL path without a leading "/".
	Path string
	// Query is what is passed to the apiserver (our own metadata and as parameters removed).
	Query url.Values
	// Accept is the Accept header for this path.
	Accept string
	// Watch says the request is a watch, which the apiserver ends by timeoutSeconds.
	Watch bool
}

// Parse validates one api_path: with or without a leading "/", under api/ or apis/, or one
// of the non-resource paths, with an optional query string. metadata=true asks for
// PartialObjectMetadata(List), as=Table for a server-side Table; paths ending in /log
// return text. Paths that escape the API and subresources that are not plain reads are
// refused (kubeclient.Classify).
func Parse(raw string) (Request, error) {
	if len(raw) > maxPathBytes {
		return Request{}, fmt.Errorf("refused: path of %d bytes is longer than %d", len(raw), maxPathBytes)
	}
	path, query, _ := strings.Cut(strings.TrimPrefix(raw, "/"), "?")
	if strings.Contains(path, "//") {
		return Request{}, fmt.Errorf("refused: empty path segment (\"//\") in %q", raw)
	}
	path = strings.TrimSuffix(path, "/")
	if !nonResource[path] && !strings.HasPrefix(path, "api/") && !strings.HasPrefix(path, "apis/") {
		return Request{}, fmt.Errorf("refused: %q is not a Kubernetes API path (want api/..., apis/..., api, apis, version, openapi/v2, healthz, livez or readyz)", raw)
	}
	target, err := kubeclient.Classify(path)
	if err != nil {
		return Request{}, err
	}
	q, err := url.ParseQuery(query)
	if err != nil {
		return Request{}, fmt.Errorf("refused: bad query string: %w", err)
	}
	r := Request{Path: path, Query: q, Accept: acceptJSON, Watch: target.Watch}
	switch v := q.Get("watch"); v {
	case "", "0", "false":
	default:
		r.Watch = true
	}
	if f := q.Get("follow"); f != "" && f != "false" && f != "0" {
		return Request{}, fmt.Errorf("refused: follow streams the log until the deadline; ask with tailLines, sinceSeconds or limitBytes instead")
	}
	metadata := q.Get("metadata")
	as := q.Get("as")
	q.Del("metadata")
	q.Del("as")
	switch {
	case target.Subresource == "log":
		r.Accept = acceptText
	case metadata == "true" && target.Name != "" && !r.Watch:
		r.Accept = acceptMetadata
	case metadata == "true":
		r.Accept = acceptMetadataList
	case strings.EqualFold(as, "Table"):
		r.Accept = acceptTable
	case as != "":
		return Request{}, fmt.Errorf("refused: as=%s: only as=Table is supported", as)
	}
	return r, nil
}
