package transparency

import (
	"strings"
	"testing"
)

// TestReadBody covers readBody's cases: exact, shorter than announced, longer
// than announced (read on), and no announced length.
func TestReadBody(t *testing.T) {
	for _, c := range []struct {
		body      string
		announced int64
		want      string
		fails     bool
	}{
		{"statement", 9, "statement", false},
		{"state", 9, "", true},
		{"statement and more", 9, "statement and more", false},
		{"statement", 0, "statement", false},
		{"statement", -1, "statement", false},
	} {
		got, err := readBody(strings.NewReader(c.body), c.announced)
		if (err != nil) != c.fails || string(got) != c.want {
			t.Errorf("readBody(%q, %d) = %q, %v; want %q, fails %v", c.body, c.announced, got, err, c.want, c.fails)
		}
	}
}
