package checks

import (
	"fmt"
	"strings"
	"time"
)

// Annotations that exempt an object, or every object of a namespace, from checks.
const (
	// AnnotationExempt lists check ids, <pillar>.* or *, separated by commas or spaces.
	AnnotationExempt = "risk.kestrel.ai/exempt"
	// AnnotationExemptReason says why; findings carry it.
	AnnotationExemptReason = "risk.kestrel.ai/exempt-reason"
	// AnnotationExemptUntil ends the exemption: an RFC 3339 time or a date (YYYY-MM-DD, the
	// exemption ends when that day begins, UTC).
	AnnotationExemptUntil = "risk.kestrel.ai/exempt-until"
)

// Exemption is a parsed exemption annotation set.
type Exemption struct {
	Patterns []string
	Reason   string
	Until    time.Time // zero: no end
	// Problems are what was wrong with the annotations; findings show them, so a typo does
	// not exempt silently (or fail silently).
	Problems []string
}

// ParseExemption reads the exemption annotations; nil when there are none. An unknown check
// id is a problem and ignored; an unparseable end makes the whole exemption void (a problem
// too), since it is safer to report than to exempt for ever.
func ParseExemption(annotations map[string]string) *Exemption {
	list, ok := annotations[AnnotationExempt]
	if !ok {
		return nil
	}
	e := &Exemption{Reason: strings.TrimSpace(annotations[AnnotationExemptReason])}
	for _, p := range strings.FieldsFunc(list, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' || r == '\n' }) {
		if ValidPattern(p) {
			e.Patterns = append(e.Patterns, p)
		} else {
			e.Problems = append(e.Problems, fmt.Sprintf("%s: %q names no check", AnnotationExempt, p))
		}
	}
	if s := strings.TrimSpace(annotations[AnnotationExemptUntil]); s != "" {
		t, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t, err = time.Parse(time.DateOnly, s)
		}
		if err != nil {
			e.Problems = append(e.Problems, fmt.Sprintf("%s: %q is neither an RFC 3339 time nor a date; the exemption is ignored", AnnotationExemptUntil, s))
			e.Patterns = nil
		}
		e.Until = t
	}
	return e
}

// Covers reports whether the exemption applies to c at now.
func (e *Exemption) Covers(c *Check, now time.Time) bool {
	if e == nil || (!e.Until.IsZero() && !now.Before(e.Until)) {
		return false
	}
	for _, p := range e.Patterns {
		if c.Match(p) {
			return true
		}
	}
	return false
}
