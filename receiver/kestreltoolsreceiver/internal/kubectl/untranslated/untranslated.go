// Package untranslated keeps kubectl's texts in English without loading its message
// catalogs. kubectl's commands translate their help texts in package-level variables, so the
// first i18n.T call happens while the process starts, whether or not a kubectl command ever
// runs: it packs the locale's catalog into a zip and parses it, 4.4 MB allocated and about
// 150 ms at every start (GODEBUG=inittrace=1). The "default" catalog maps English to the same
// English, and without a catalog i18n.T returns its text unchanged, so the cloud reads the
// same output, now whatever the container's LANG.
//
// Go initialises packages in import-path order as soon as their imports are: this package
// (github.com/...) depends on i18n alone, so it runs right after it, before any k8s.io/kubectl
// command package calls i18n.T. The kubectl package imports it for that.
package untranslated // import "github.com/kestrelai/otelcol-kestrel/receiver/kestreltoolsreceiver/internal/kubectl/untranslated"

import (
	"sync/atomic"

	"k8s.io/kubectl/pkg/util/i18n"
)

// installed reports that kubectl's first translation went through the loader below.
var installed atomic.Bool

func init() {
	// The error means a catalog was loaded already: then the texts are translated as before.
	_ = i18n.SetLoadTranslationsFunc(func() error {
		installed.Store(true)
		return nil
	})
}

// Installed reports whether kubectl's texts are left untranslated: false if a package
// translated a text before this one's init ran.
func Installed() bool {
	return installed.Load()
}
