package untranslated_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	// Translates its help texts in package-level variables, as every kubectl command does.
	_ "k8s.io/kubectl/pkg/cmd/apiresources"
	"k8s.io/kubectl/pkg/util/i18n"

	"github.com/kestrelai/otelcol-kestrel/receiver/kestreltoolsreceiver/internal/kubectl/untranslated"
)

func TestKubectlLoadsNoCatalog(t *testing.T) {
	assert.True(t, untranslated.Installed(), "a kubectl package translated a text before the no-catalog loader was set")
	assert.Equal(t, "Print the supported API resources on the server",
		i18n.T("Print the supported API resources on the server"))
}
