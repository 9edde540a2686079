package crd

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseRef(t *testing.T) {
	for in, want := range map[string]Ref{"web": {Name: "web"}, "shop/web": {Namespace: "shop", Name: "web"}} {
		got, err := ParseRef(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, got)
	}
	for _, in := range []string{"", "/", "a/b/c", "Shop/web", "shop/", "web!", "/web"} {
		_, err := ParseRef(in)
		assert.Equal(t, http.StatusBadRequest, Code(err), in)
	}
}

func TestDecodeBody(t *testing.T) {
	var v struct {
		Name string `json:"name"`
		Full bool   `json:"full"`
	}
	require.NoError(t, DecodeBody("", &v))
	require.NoError(t, DecodeBody(`{"name":"web","full":true,"unknown":[1]}`, &v))
	assert.Equal(t, "web", v.Name)
	assert.True(t, v.Full)
	for _, in := range []string{`{`, `[]`, `{"name":1}`, `{} {}`, `null x`} {
		assert.Equal(t, http.StatusBadRequest, Code(DecodeBody(in, &v)), in)
	}
}

// FuzzParseRef: any filter gives a valid reference or a 400, never a panic.
func FuzzParseRef(f *testing.F) {
	for _, s := range []string{"web", "shop/web", "a/b/c", "", "/", "ns/" + string(make([]byte, 300))} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseRef(s)
		if err != nil {
			assert.Equal(t, http.StatusBadRequest, Code(err))
			return
		}
		assert.NoError(t, r.Check())
	})
}

// FuzzDecodeBody: any json_body decodes or gives a 400.
func FuzzDecodeBody(f *testing.F) {
	for _, s := range []string{"", "{}", `{"name":"web","revision":3}`, `{"revision":1e400}`, `[`, `{"full":"yes"}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var v struct {
			Name     string `json:"name"`
			Revision int64  `json:"revision"`
			Full     bool   `json:"full"`
		}
		if err := DecodeBody(s, &v); err != nil {
			assert.Equal(t, http.StatusBadRequest, Code(err))
		}
	})
}
