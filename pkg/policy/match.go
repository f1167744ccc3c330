package policy

import (
	"fmt"
	"path"
	"strings"
)

// checkGlob reports whether g is a valid pattern.
func checkGlob(g string) error {
	if _, err := path.Match(g, ""); err != nil {
		return fmt.Errorf("bad pattern %q: %w", g, err)
	}
	return nil
}

// globMatch matches s against a path.Match pattern, where * matches any run
// of characters except /.
func globMatch(pattern, s string) bool {
	ok, err := path.Match(pattern, s)
	return err == nil && ok
}

// anyGlob reports whether s matches one of the patterns.
func anyGlob(patterns []string, s string) bool {
	for _, p := range patterns {
		if globMatch(p, s) {
			return true
		}
	}
	return false
}

// prefixMatch matches id against prefix on a path-segment boundary:
// "spiffe://td/github/acme" allows "spiffe://td/github/acme" and
// "spiffe://td/github/acme/x", never "spiffe://td/github/acme-evil".
func prefixMatch(prefix, id string) bool {
	if !strings.HasPrefix(id, prefix) {
		return false
	}
	if len(id) == len(prefix) || strings.HasSuffix(prefix, "/") {
		return true
	}
	return id[len(prefix)] == '/'
}

// match reports whether the workload rule allows id (without the claims).
func (w Workload) match(id string) bool {
	switch {
	case w.Exact != "":
		return id == w.Exact
	case w.Prefix != "":
		return prefixMatch(w.Prefix, id)
	default:
		return globMatch(w.Glob, id)
	}
}

func (w Workload) String() string {
	switch {
	case w.Exact != "":
		return "exact " + w.Exact
	case w.Prefix != "":
		return "prefix " + w.Prefix
	}
	return "glob " + w.Glob
}
