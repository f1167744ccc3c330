package citest

import (
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"go.yaml.in/yaml/v3"
)

// componentFixtures gives values to the inputs that have no default.
var componentFixtures = map[string]any{
	"ts-url":          "https://ts.example.org",
	"identity-server": "https://id.example.org",
	"policy":          ".trustfabric/policy.yaml",
}

func loadSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	s, err := LoadGitLabSchema(filepath.Join("testdata", "gitlab-ci.schema.json"))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestGitLabComponents(t *testing.T) {
	s := loadSchema(t)
	root := repoRoot(t)
	// Job names carry the job-prefix input, so two includes do not collide.
	want := map[string]string{"attest.yml": "$[[ inputs.job-prefix ]]trustfabric-attest", "verify.yml": "$[[ inputs.job-prefix ]]trustfabric-verify"}
	for file, job := range want {
		path := filepath.Join(root, "gitlab", "templates", file)
		t.Run(file, func(t *testing.T) {
			for _, err := range CheckComponent(path, s, componentFixtures) {
				t.Error(err)
			}
			jobs, err := ComponentJobs(path)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(jobs, []string{job}) {
				t.Errorf("jobs = %v, want [%s]", jobs, job)
			}
		})
	}
}

// TestGitLabAttestIdentity pins what the issue asks of the attest component:
// the ID token's aud is the identity-server input, registry credentials come
// from CI_REGISTRY_*, and results are a dotenv report.
func TestGitLabAttestIdentity(t *testing.T) {
	path := filepath.Join(repoRoot(t), "gitlab", "templates", "attest.yml")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	docs, err := splitYAML(b)
	if err != nil || len(docs) != 2 {
		t.Fatalf("split: %v (%d docs)", err, len(docs))
	}
	var body map[string]struct {
		IDTokens map[string]struct {
			Aud string `yaml:"aud"`
		} `yaml:"id_tokens"`
		Script    []string `yaml:"script"`
		Artifacts struct {
			Reports struct {
				Dotenv string `yaml:"dotenv"`
			} `yaml:"reports"`
		} `yaml:"artifacts"`
	}
	if err := docs[1].Decode(&body); err != nil {
		t.Fatal(err)
	}
	job := body["$[[ inputs.job-prefix ]]trustfabric-attest"]
	if got := job.IDTokens["TRUSTFABRIC_ID_TOKEN"].Aud; got != "$[[ inputs.identity-server ]]" {
		t.Errorf("id_tokens.TRUSTFABRIC_ID_TOKEN.aud = %q, want the identity-server input", got)
	}
	if job.Artifacts.Reports.Dotenv == "" {
		t.Error("no dotenv report")
	}
	script := strings.Join(job.Script, "\n")
	for _, want := range []string{"CI_REGISTRY_PASSWORD", "CI_REGISTRY_USER", "--identity-server", "--ts", "--output json"} {
		if !strings.Contains(script, want) {
			t.Errorf("script does not use %s", want)
		}
	}
	if interpRE.MatchString(script) {
		t.Error("script interpolates inputs directly; pass them through variables")
	}
}

func TestGitLabComponentRejects(t *testing.T) {
	s := loadSchema(t)
	tests := []struct {
		file string
		want error
	}{
		{"unknown-key.yml", ErrSchema},
		{"untyped-input.yml", ErrUntypedInput},
		{"undeclared-input.yml", ErrUndeclaredInput},
		{"unused-input.yml", ErrUnusedInput},
		{"wrong-type.yml", ErrSchema},
		{"bad-id-token.yml", ErrSchema},
		{"bad-id-token.yml", ErrMissingFixture},
		{"no-header.yml", ErrNotComponent},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			errs := CheckComponent(filepath.Join("testdata", "gitlab", tt.file), s, nil)
			for _, err := range errs {
				if errors.Is(err, tt.want) {
					return
				}
			}
			t.Errorf("CheckComponent = %v, want an error wrapping %v", errs, tt.want)
		})
	}
}

// TestGitLabExamples validates the example pipelines (plain .gitlab-ci.yml
// files, one document each) against the schema.
func TestGitLabExamples(t *testing.T) {
	s := loadSchema(t)
	files, err := filepath.Glob(filepath.Join(repoRoot(t), "examples", "gitlab", "*.yml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no examples in examples/gitlab (err %v)", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			var doc any
			if err := yaml.Unmarshal(b, &doc); err != nil {
				t.Fatal(err)
			}
			if err := ValidateGitLabDoc(s, doc); err != nil {
				t.Error(err)
			}
			if !strings.Contains(string(b), "/trustfabric/components/attest@") || !strings.Contains(string(b), "/trustfabric/components/verify@") {
				t.Error("example does not include the Trustfabric components")
			}
		})
	}
}

// TestGitLabSelfTest validates the components' own pipeline, which
// .ci/ci.sh runs under gitlab-ci-local.
func TestGitLabSelfTest(t *testing.T) {
	s := loadSchema(t)
	b, err := os.ReadFile(filepath.Join(repoRoot(t), "gitlab", "selftest", ".gitlab-ci.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var doc any
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	if err := ValidateGitLabDoc(s, doc); err != nil {
		t.Error(err)
	}
	for _, c := range []string{"/attest@$CI_COMMIT_SHA", "/verify@$CI_COMMIT_SHA"} {
		if !strings.Contains(string(b), "component: $CI_SERVER_FQDN/$CI_PROJECT_PATH"+c) {
			t.Errorf("self-test does not include the component %s", c)
		}
	}
}

// TestGitLabSchemaCopy checks that the vendored schema still has the parts the
// components rely on, so a careless refresh cannot silently weaken the check.
func TestGitLabSchemaCopy(t *testing.T) {
	s := loadSchema(t)
	bad := []struct {
		name string
		doc  string
	}{
		{"id token without aud", "j: {script: [x], id_tokens: {T: {}}}"},
		{"dotenv report of wrong type", "j: {script: [x], artifacts: {reports: {dotenv: {a: b}}}}"},
		{"include remote with bad integrity", "include: [{remote: 'https://x.example/a.yml', integrity: 'md5-x'}]"},
		{"spec with unknown key", "spec: {inputs: {a: {type: string}}, foo: 1}"},
		{"input of unknown type", "spec: {inputs: {a: {type: float}}}"},
	}
	for _, tt := range bad {
		var doc any
		if err := yaml.Unmarshal([]byte(tt.doc), &doc); err != nil {
			t.Fatal(err)
		}
		if err := ValidateGitLabDoc(s, doc); !errors.Is(err, ErrSchema) {
			t.Errorf("%s: got %v, want a schema error", tt.name, err)
		}
	}
	good := "include: [{remote: 'https://x.example/a.yml', integrity: 'sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=', inputs: {a: 1}}]"
	var doc any
	if err := yaml.Unmarshal([]byte(good), &doc); err != nil {
		t.Fatal(err)
	}
	if err := ValidateGitLabDoc(s, doc); err != nil {
		t.Errorf("valid include rejected: %v", err)
	}
}

// TestGitLabReadme checks that gitlab/README.md (the catalog page) documents
// every input of every component.
func TestGitLabReadme(t *testing.T) {
	root := repoRoot(t)
	readme, err := os.ReadFile(filepath.Join(root, "gitlab", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	sections := strings.Split(string(readme), "\n### ")
	for _, name := range []string{"attest", "verify"} {
		b, err := os.ReadFile(filepath.Join(root, "gitlab", "templates", name+".yml"))
		if err != nil {
			t.Fatal(err)
		}
		docs, err := splitYAML(b)
		if err != nil || len(docs) != 2 {
			t.Fatalf("%s: %v", name, err)
		}
		inputs, err := specInputs(docs[0])
		if err != nil {
			t.Fatal(err)
		}
		var section string
		for _, s := range sections {
			if strings.HasPrefix(s, name+"\n") {
				section = s
			}
		}
		if section == "" {
			t.Errorf("gitlab/README.md has no ### %s section", name)
			continue
		}
		for in, spec := range inputs {
			if !strings.Contains(section, "| `"+in+"` | "+spec.Type+" |") {
				t.Errorf("### %s does not document input %s (%s)", name, in, spec.Type)
			}
		}
	}
}

// TestGitLabComponentImage: each component's job runs in Trustfabric's
// shell image by digest (the cli-image input's default, pinned by the
// release) and nothing in the script installs or downloads the CLI.
func TestGitLabComponentImage(t *testing.T) {
	const image = "ghcr.io/trustfabric/trustfabric:unreleased-shell@sha256:0000000000000000000000000000000000000000000000000000000000000000"
	install := regexp.MustCompile(`go install|go build|curl |wget |apk add|apt-get|install\.sh`)
	for _, name := range []string{"attest", "verify"} {
		path := filepath.Join(repoRoot(t), "gitlab", "templates", name+".yml")
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		docs, err := splitYAML(b)
		if err != nil || len(docs) != 2 {
			t.Fatalf("%s: split: %v (%d docs)", name, err, len(docs))
		}
		inputs, err := specInputs(docs[0])
		if err != nil {
			t.Fatal(err)
		}
		if in, ok := inputs["cli-image"]; !ok || in.Default != image {
			t.Errorf("%s: cli-image input %+v, want default %s", name, in, image)
		}
		var body map[string]struct {
			Image struct {
				Name       string   `yaml:"name"`
				Entrypoint []string `yaml:"entrypoint"`
			} `yaml:"image"`
			Script []string `yaml:"script"`
		}
		if err := docs[1].Decode(&body); err != nil {
			t.Fatal(err)
		}
		job := body["$[[ inputs.job-prefix ]]trustfabric-"+name]
		if job.Image.Name != "$[[ inputs.cli-image ]]" || len(job.Image.Entrypoint) != 1 || job.Image.Entrypoint[0] != "" {
			t.Errorf("%s: job image %+v, want the cli-image input with entrypoint [\"\"]", name, job.Image)
		}
		if m := install.FindString(strings.Join(job.Script, "\n")); m != "" {
			t.Errorf("%s: script installs at run time (%q)", name, m)
		}
	}
}
