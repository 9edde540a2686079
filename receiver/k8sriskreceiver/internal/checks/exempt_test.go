package checks

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseExemption(t *testing.T) {
	now := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	privileged, _ := ByID("security.privileged-container")
	probes, _ := ByID("reliability.probes")

	assert.Nil(t, ParseExemption(map[string]string{"other": "x"}))

	e := ParseExemption(map[string]string{AnnotationExempt: "security.privileged-container, reliability.nope", AnnotationExemptReason: " CNI agent "})
	require.NotNil(t, e)
	assert.Equal(t, "CNI agent", e.Reason)
	assert.True(t, e.Covers(privileged, now))
	assert.False(t, e.Covers(probes, now))
	assert.Equal(t, []string{`risk.kestrel.ai/exempt: "reliability.nope" names no check`}, e.Problems)

	e = ParseExemption(map[string]string{AnnotationExempt: "security.*", AnnotationExemptUntil: "2026-06-02"})
	assert.True(t, e.Covers(privileged, now))
	assert.False(t, e.Covers(probes, now))
	assert.False(t, e.Covers(privileged, now.Add(24*time.Hour)), "expired at the start of the day")

	e = ParseExemption(map[string]string{AnnotationExempt: "*", AnnotationExemptUntil: "2026-05-31T23:00:00Z"})
	assert.False(t, e.Covers(probes, now), "expired")

	e = ParseExemption(map[string]string{AnnotationExempt: "*", AnnotationExemptUntil: "soon"})
	assert.False(t, e.Covers(probes, now), "an unreadable end voids the exemption")
	assert.Len(t, e.Problems, 1)
}

// FuzzParseExemption: any annotation values parse without panicking, and an exemption never
// covers a check after its end or when its end is unreadable.
func FuzzParseExemption(f *testing.F) {
	f.Add("security.*, reliability.probes", "because", "2026-06-02")
	f.Add("*", "", "2026-05-31T23:00:00Z")
	f.Add(",, ,\t*", "x", "not a date")
	f.Add("security.privileged-container", "", "")
	now := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, list, reason, until string) {
		e := ParseExemption(map[string]string{AnnotationExempt: list, AnnotationExemptReason: reason, AnnotationExemptUntil: until})
		require.NotNil(t, e)
		for _, c := range Catalogue() {
			if e.Covers(c, now) {
				assert.True(t, e.Until.IsZero() || now.Before(e.Until))
				assert.NotEmpty(t, e.Patterns)
			}
		}
	})
}
