package repocheck

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/trustfabric/trustfabric/pkg/policy"
)

// TestExamplePolicies: every verification policy under examples/ passes what
// `trustfabric policy check` checks: it loads, and every key and bundle file
// it names loads (offline).
func TestExamplePolicies(t *testing.T) {
	n := 0
	err := filepath.WalkDir(filepath.Join(root, "examples"), func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !(strings.HasSuffix(path, ".yaml") || strings.HasSuffix(path, ".yml")) {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if !strings.Contains(string(b), "kind: VerificationPolicy") {
			return nil
		}
		n++
		p, err := policy.Load(path)
		if err != nil {
			t.Errorf("%s: %v", path, err)
			return nil
		}
		if _, err := policy.NewVerifier(context.Background(), p, policy.WithOffline()); err != nil {
			t.Errorf("%s: %v", path, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		t.Fatal("no verification policy under examples/")
	}
}
