package attest_test

import (
	"context"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/trustfabric/trustfabric/pkg/attest"
	"github.com/trustfabric/trustfabric/pkg/keys"
	"github.com/trustfabric/trustfabric/pkg/wimse"
	"github.com/trustfabric/trustfabric/pkg/workload"
)

func readFile(t testing.TB, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func itoa(n uint64) string { return strconv.FormatUint(n, 10) }

// githubOutput reads the value of name from a $GITHUB_OUTPUT file in the
// runner's heredoc format (name<<DELIM, value lines, DELIM).
func githubOutput(file, name string) string {
	lines := strings.Split(file, "\n")
	for i, l := range lines {
		k, delim, ok := strings.Cut(l, "<<")
		if !ok || k != name {
			continue
		}
		var v []string
		for _, m := range lines[i+1:] {
			if m == delim {
				return strings.Join(v, "\n")
			}
			v = append(v, m)
		}
	}
	return ""
}

// staticCredentials is an identity without a WIT: a bare key.
func staticCredentials(key *keys.PrivateKey, id string) attest.CredentialsSource {
	return func(context.Context) (*workload.Credentials, error) {
		return &workload.Credentials{Key: key, ID: wimse.RequireIdentifier(id), Provider: "static"}, nil
	}
}
