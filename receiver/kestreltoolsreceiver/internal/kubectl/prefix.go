package kubectl

import (
	"bytes"
	"io"
	"regexp"
)

// containerRef finds the container name in a field path such as spec.containers{app}.
var containerRef = regexp.MustCompile(`spec\.(?:initContainers|containers|ephemeralContainers)\{(.+)\}`)

func containerOf(fieldPath string) string {
	if m := containerRef.FindStringSubmatch(fieldPath); len(m) == 2 {
		return m[1]
	}
	return ""
}

// prefixWriter starts every line with prefix (kubectl logs --prefix).
type prefixWriter struct {
	prefix string
	w      io.Writer
	start  bool
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	var out bytes.Buffer
	for _, c := range b {
		if p.start {
			out.WriteString(p.prefix)
			p.start = false
		}
		out.WriteByte(c)
		if c == '\n' {
			p.start = true
		}
	}
	if _, err := p.w.Write(out.Bytes()); err != nil {
		return 0, err
	}
	return len(b), nil
}
