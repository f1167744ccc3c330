package provenance

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/trustfabric/trustfabric/pkg/ci"
)

func loadEnv(t *testing.T, platform string) func(string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "env-"+platform+".json"))
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return func(k string) string { return m[k] }
}

func compileSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", "slsa-provenance-v1.schema.json"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	doc, err := jsonschema.UnmarshalJSON(f)
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("schema.json", doc); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile("schema.json")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

var fixedClock = WithClock(func() time.Time { return time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC) })

var imageSubject = Subject{Name: "ghcr.io/acme/widgets", Digest: map[string]string{
	"sha256": "4b5e2a3c1d0f9e8d7c6b5a49382716051f2e3d4c5b6a79880716253443526170"}}

// TestBuildPerPlatform builds provenance from each platform's documented environment
// variables alone and validates it against the SLSA v1 rules.
func TestBuildPerPlatform(t *testing.T) {
	schema := compileSchema(t)
	tests := []struct {
		platform                     string
		buildType, builderID, depURI string
		invocationID, startedOn      string
		externalKey                  string
	}{
		{"github", BuildTypeGitHub, "https://github.com/acme/widgets/.github/workflows/release.yml@refs/heads/main",
			"git+https://github.com/acme/widgets@refs/heads/main",
			"https://github.com/acme/widgets/actions/runs/9876543210/attempts/2", "2026-03-01T12:00:00Z", "workflow"},
		{"gitlab", BuildTypeGitLab, "https://gitlab.example.org/platform/widgets/-/runners/12",
			"git+https://gitlab.example.org/platform/widgets@refs/heads/main",
			"https://gitlab.example.org/platform/widgets/-/jobs/55501", "2026-03-01T10:00:05Z", "pipeline"},
		{"tekton", BuildTypeTekton, "https://tekton.example.org/clusters/prod",
			"git+https://github.com/acme/widgets@refs/heads/main",
			"b1a2c3d4-e5f6-4711-8899-aabbccddeeff", "2026-03-01T11:30:00Z", "pipeline"},
	}
	for _, tc := range tests {
		t.Run(tc.platform, func(t *testing.T) {
			c, err := ci.Detect(loadEnv(t, tc.platform))
			if err != nil {
				t.Fatal(err)
			}
			out, err := Build(c, []Subject{imageSubject}, fixedClock)
			if err != nil {
				t.Fatal(err)
			}
			inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(out))
			if err != nil {
				t.Fatal(err)
			}
			if err := schema.Validate(inst); err != nil {
				t.Fatalf("schema: %v\n%s", err, out)
			}
			var st struct {
				Predicate struct {
					BuildDefinition struct {
						BuildType            string
						ExternalParameters   map[string]any
						ResolvedDependencies []struct {
							URI    string `json:"uri"`
							Digest map[string]string
						}
					}
					RunDetails struct {
						Builder  struct{ ID string }
						Metadata struct{ InvocationID, StartedOn string }
					}
				}
			}
			if err := json.Unmarshal(out, &st); err != nil {
				t.Fatal(err)
			}
			p := st.Predicate
			if p.BuildDefinition.BuildType != tc.buildType {
				t.Errorf("buildType = %q, want %q", p.BuildDefinition.BuildType, tc.buildType)
			}
			if p.RunDetails.Builder.ID != tc.builderID {
				t.Errorf("builder.id = %q, want %q", p.RunDetails.Builder.ID, tc.builderID)
			}
			if got := p.BuildDefinition.ResolvedDependencies; len(got) != 1 || got[0].URI != tc.depURI || got[0].Digest["gitCommit"] != c.Commit {
				t.Errorf("resolvedDependencies = %+v, want %s at %s", got, tc.depURI, c.Commit)
			}
			if p.RunDetails.Metadata.InvocationID != tc.invocationID || p.RunDetails.Metadata.StartedOn != tc.startedOn {
				t.Errorf("metadata = %+v, want %s / %s", p.RunDetails.Metadata, tc.invocationID, tc.startedOn)
			}
			if _, ok := p.BuildDefinition.ExternalParameters[tc.externalKey]; !ok {
				t.Errorf("externalParameters lacks %q: %v", tc.externalKey, p.BuildDefinition.ExternalParameters)
			}
			// Stable: the same input gives the same bytes, and they parse back.
			again, err := Build(c, []Subject{imageSubject}, fixedClock)
			if err != nil || !bytes.Equal(out, again) {
				t.Errorf("Build is not stable")
			}
			if st, err := ParseStatement(out); err != nil || st.PredicateType != PredicateSLSAv1 || !st.Covers(imageSubject) {
				t.Errorf("ParseStatement(Build()) = %+v, %v", st, err)
			}
		})
	}
}

// TestSchemaRejects makes sure the schema test can fail: broken statements are rejected.
func TestSchemaRejects(t *testing.T) {
	schema := compileSchema(t)
	c, err := ci.Detect(loadEnv(t, "github"))
	if err != nil {
		t.Fatal(err)
	}
	good, err := Build(c, []Subject{imageSubject}, fixedClock)
	if err != nil {
		t.Fatal(err)
	}
	for name, mutate := range map[string]func(string) string{
		"uppercase digest": func(s string) string { return strings.Replace(s, "4b5e2a3c", "4B5E2A3C", 1) },
		"short commit": func(s string) string {
			return strings.Replace(s, "8f2b1c3d4e5f60718293a4b5c6d7e8f901234567\"", "8f2b1c\"", 1)
		},
		"no builder id": func(s string) string { return strings.Replace(s, `"builder":{"id":`, `"builder":{"x":`, 1) },
		"wrong type":    func(s string) string { return strings.Replace(s, "Statement/v1", "Statement/v9", 1) },
	} {
		bad := mutate(string(good))
		if bad == string(good) {
			t.Fatalf("%s: mutation did not apply", name)
		}
		inst, err := jsonschema.UnmarshalJSON(strings.NewReader(bad))
		if err != nil {
			t.Fatal(err)
		}
		if schema.Validate(inst) == nil {
			t.Errorf("%s: schema accepted %s", name, bad)
		}
	}
}

func TestBuildErrors(t *testing.T) {
	c, _ := ci.Detect(loadEnv(t, "github"))
	if _, err := Build(c, nil); err == nil {
		t.Error("no subjects accepted")
	}
	if _, err := Build(&ci.Context{Platform: "jenkins"}, []Subject{imageSubject}); err == nil {
		t.Error("unknown platform accepted")
	}
	bad := c
	bad.Commit = "not-hex"
	if _, err := Build(bad, []Subject{imageSubject}); err == nil {
		t.Error("non-hex commit accepted")
	}
}
