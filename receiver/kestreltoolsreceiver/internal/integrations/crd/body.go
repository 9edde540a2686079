package crd

import (
	"bytes"
	"encoding/json"
	"net/http"
)

// DecodeBody reads json_body into v: empty is no body, anything but one JSON object is a
// 400. Fields v does not know are ignored, as the operator the cloud was written against
// reads one envelope for all integrations.
func DecodeBody(s string, v any) error {
	if s == "" {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader([]byte(s)))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return Errorf(http.StatusBadRequest, "json_body: %v", err)
	}
	if dec.More() {
		return Errorf(http.StatusBadRequest, "json_body: more than one JSON value")
	}
	return nil
}
