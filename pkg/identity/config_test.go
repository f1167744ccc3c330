package identity

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/trustfabric/trustfabric/pkg/workload"
)

func TestParseConfigExample(t *testing.T) {
	data, err := os.ReadFile("testdata/identity.yaml")
	if err != nil {
		t.Fatal(err)
	}
	c, err := ParseConfig(data)
	if err != nil {
		t.Fatal(err)
	}
	if c.WITLifetime != 10*time.Minute || len(c.Providers) != 3 || c.Providers[0].Allow["repository_owner"][0] != "acme" {
		t.Fatalf("config = %+v", c)
	}
}

func TestParseConfigRejects(t *testing.T) {
	base := "trustDomain: ci.example.org\nissuer: https://id.example.org\nproviders:\n  - type: github\n    issuer: https://token.actions.githubusercontent.com\n    audience: https://id.example.org\n"
	tests := []struct{ name, yaml string }{
		{"unknown top-level field", base + "extra: 1\n"},
		{"unknown provider field", base + "    audiences: [x]\n"},
		{"lifetime over 15m", base + "witLifetime: 16m\n"},
		{"no audience", strings.Replace(base, "    audience: https://id.example.org\n", "", 1)},
		{"unknown type", strings.Replace(base, "type: github", "type: jenkins", 1)},
		{"HS256 allowed", base + "    algorithms: [HS256]\n"},
		{"bad trust domain", strings.Replace(base, "ci.example.org", "CI EXAMPLE", 1)},
		{"colliding template", base + "    identifier: \"spiffe://{trustDomain}/x/{ref}/{sha}\"\n"},
		{"foreign authority", base + "    identifier: \"spiffe://evil.example/{ref}\"\n"},
		{"bad glob", base + "    allow:\n      ref: [\"[\"]\n"},
		{"no providers", "trustDomain: ci.example.org\n"},
		{"two documents", base + "---\ntrustDomain: x\n"},
		{"empty", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := ParseConfig([]byte(tt.yaml)); !errors.Is(err, ErrConfig) {
				t.Fatalf("err = %v, want ErrConfig", err)
			}
		})
	}
	if _, err := ParseConfig([]byte(base)); err != nil {
		t.Fatalf("base config: %v", err)
	}
}

func TestTemplateSingleSegment(t *testing.T) {
	tm, err := ParseTemplate("spiffe://{trustDomain}/x/{ref:segment}/{sha:segment}", "td.example", nil)
	if err != nil {
		t.Fatal(err)
	}
	id, err := tm.Expand(map[string]string{"ref": "a/b", "sha": "c"})
	if err != nil {
		t.Fatal(err)
	}
	if id.String() != "spiffe://td.example/x/a_2Fb/c" {
		t.Fatalf("id = %s", id)
	}
	if _, err := tm.Expand(map[string]string{"ref": "a"}); !errors.Is(err, ErrClaims) {
		t.Fatalf("missing claim: err = %v", err)
	}
}

func FuzzParseConfig(f *testing.F) {
	seed, _ := os.ReadFile("testdata/identity.yaml")
	f.Add(seed)
	f.Add([]byte("trustDomain: [\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseConfig(data)
		if err == nil && (c.WITLifetime <= 0 || c.WITLifetime > MaxWITLifetime || len(c.Providers) == 0) {
			t.Fatalf("accepted invalid config %+v", c)
		}
	})
}

func FuzzVerifyDPoP(f *testing.F) {
	k, _ := newKeyNoT()
	p, _ := workload.NewDPoPProof(k, "https://id.example.org/token")
	f.Add(p)
	f.Add("a.b.c")
	f.Fuzz(func(t *testing.T, proof string) {
		_, p, err := verifyDPoP(proof, "https://id.example.org/token", time.Now())
		if err == nil {
			_ = p.use(newReplay(), time.Now())
		}
	})
}
