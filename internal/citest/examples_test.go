package citest

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/trustfabric/trustfabric/pkg/identity"
	"github.com/trustfabric/trustfabric/pkg/policy"
	"github.com/trustfabric/trustfabric/pkg/transparency"
)

// TestExampleConfigs parses the example verification policy, identity
// issuance policy and registration policy with the loaders the CLI uses, so
// the examples cannot drift from what the code accepts.
func TestExampleConfigs(t *testing.T) {
	root := repoRoot(t)
	read := func(rel string) []byte {
		t.Helper()
		b, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(rel)))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	p, err := policy.Parse(read("examples/policy/verify.yaml"), filepath.Join(root, "examples", "policy"))
	if err != nil {
		t.Errorf("examples/policy/verify.yaml: %v", err)
	} else if len(p.Workloads) < 3 || len(p.TransparencyServices) != 1 {
		t.Errorf("verify.yaml: %d workloads, %d services", len(p.Workloads), len(p.TransparencyServices))
	}
	idc, err := identity.ParseConfig(read("examples/serve/identity.yaml"))
	if err != nil {
		t.Errorf("examples/serve/identity.yaml: %v", err)
	} else {
		if err := idc.Validate(); err != nil {
			t.Errorf("examples/serve/identity.yaml: %v", err)
		}
		kinds := map[string]bool{}
		for _, pr := range idc.Providers {
			kinds[pr.Type] = true
		}
		for _, k := range []string{"github", "gitlab", "kubernetes"} {
			if !kinds[k] {
				t.Errorf("identity.yaml has no %s provider", k)
			}
		}
	}
	if _, err := transparency.ParseConfig(read("examples/serve/registration.yaml")); err != nil {
		t.Errorf("examples/serve/registration.yaml: %v", err)
	}
}
