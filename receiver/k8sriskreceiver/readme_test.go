package k8sriskreceiver

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kestrelai/otelcol-kestrel/receiver/k8sriskreceiver/internal/checks"
)

// The README's table of checks is the catalogue: every check with its title, severity and
// failing result, and no other.
func TestReadmeListsTheCatalogue(t *testing.T) {
	raw, err := os.ReadFile("README.md")
	require.NoError(t, err)
	readme := string(raw)
	for _, c := range checks.Catalogue() {
		assert.Contains(t, readme, fmt.Sprintf("| %#q | %s | %s | %s |", c.ID, c.Title, c.Severity, c.Failing()))
	}
	rows := 0
	for line := range strings.Lines(readme) {
		if strings.HasPrefix(line, "| `") && strings.Count(line, " | ") == 6 {
			rows++
		}
	}
	assert.Len(t, checks.Catalogue(), rows, "rows of the table of checks")
}
