// Package tekton validates Trustfabric's Tekton catalog (tasks, step actions,
// samples) and the Tekton examples with the real tektoncd/pipeline v1.0.0 API
// types: strict unmarshal, SetDefaults, Validate. It is a nested module so the
// main module never depends on Kubernetes. See specs/ci.md §2 and
// docs/design/ci.md.
package tekton

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	v1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	"github.com/tektoncd/pipeline/pkg/apis/pipeline/v1beta1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"knative.dev/pkg/apis"
	"sigs.k8s.io/yaml"
)

// errNotPinned marks an image reference that is not pinned by digest.
var errNotPinned = errors.New("image not pinned by digest")

var pinnedRE = regexp.MustCompile(`^[a-z0-9.-]+(:[0-9]+)?/[a-z0-9._/-]+(:[A-Za-z0-9._-]+)?@sha256:[0-9a-f]{64}$`)

// resultBounds is the largest value each result can hold: hex entry ids,
// decimal indexes, sha256/sha512 digests, and the referrer URI, which the CLI
// caps at 1024 bytes (pkg/attest maxTektonResult); their sum must stay well
// inside Tekton's 4096-byte budget.
var resultBounds = map[string]int{
	"ENTRY_ID":        64,
	"LOG_INDEX":       20,
	"REFERRER_DIGEST": 135,
	"REFERRER_URI":    1024,
	"DECISION":        5,
}

// terminationBudget is the termination message cap shared by all results of
// a step; perResultOverhead covers the JSON around each value.
const (
	terminationBudget = 4096
	perResultOverhead = 64
)

// validatable is what every Tekton type we check implements.
type validatable interface {
	SetDefaults(context.Context)
	Validate(context.Context) *apis.FieldError
}

// decode strictly unmarshals a manifest into the type its kind names.
func decode(b []byte) (validatable, error) {
	var tm metav1.TypeMeta
	if err := yaml.Unmarshal(b, &tm); err != nil {
		return nil, fmt.Errorf("read kind: %w", err)
	}
	var obj validatable
	switch tm.APIVersion + "/" + tm.Kind {
	case "tekton.dev/v1/Task":
		obj = &v1.Task{}
	case "tekton.dev/v1/TaskRun":
		obj = &v1.TaskRun{}
	case "tekton.dev/v1/Pipeline":
		obj = &v1.Pipeline{}
	case "tekton.dev/v1/PipelineRun":
		obj = &v1.PipelineRun{}
	case "tekton.dev/v1beta1/StepAction":
		obj = &v1beta1.StepAction{}
	default:
		return nil, fmt.Errorf("unexpected %s %s", tm.APIVersion, tm.Kind)
	}
	if err := yaml.UnmarshalStrict(b, obj); err != nil {
		return nil, fmt.Errorf("strict unmarshal: %w", err)
	}
	// The API server names generateName objects before validating them.
	if m, ok := obj.(metav1.Object); ok && m.GetName() == "" && m.GetGenerateName() != "" {
		m.SetName(m.GetGenerateName() + "sample")
	}
	return obj, nil
}

// validate runs SetDefaults and Validate the way the webhook does.
func validate(b []byte) (validatable, error) {
	obj, err := decode(b)
	if err != nil {
		return nil, err
	}
	ctx := context.Background()
	obj.SetDefaults(ctx)
	if fe := obj.Validate(ctx); fe != nil {
		return nil, fmt.Errorf("validate: %w", fe)
	}
	return obj, nil
}

func manifests(t *testing.T) []string {
	t.Helper()
	var files []string
	for _, root := range []string{".", filepath.Join("..", "examples", "tekton")} {
		err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if !d.IsDir() && strings.HasSuffix(p, ".yaml") && !strings.Contains(p, "testdata") {
				files = append(files, p)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if len(files) < 8 {
		t.Fatalf("found %d manifests, want the tasks, the step action, their samples and the examples", len(files))
	}
	return files
}

func TestValidate(t *testing.T) {
	for _, f := range manifests(t) {
		t.Run(f, func(t *testing.T) {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			obj, err := validate(b)
			if err != nil {
				t.Fatal(err)
			}
			switch o := obj.(type) {
			case *v1.Task:
				checkCatalog(t, f, o.ObjectMeta, o.Spec.Description)
				checkTask(t, o)
			case *v1beta1.StepAction:
				checkCatalog(t, f, o.ObjectMeta, o.Spec.Description)
				if err := pinned(o.Spec.Image); err != nil {
					t.Error(err)
				}
				if err := projectImage(o.Spec.Image); err != nil {
					t.Error(err)
				}
				checkExecForm(t, o.Name, o.Spec.Script, o.Spec.Command)
				checkResults(t, stepActionResultNames(o))
			}
		})
	}
}

// checkCatalog applies the Tekton catalog rules (TEP-0003, TEP-0115).
func checkCatalog(t *testing.T, path string, meta metav1.ObjectMeta, description string) {
	t.Helper()
	dir := filepath.Dir(path)
	if want := filepath.Base(dir); meta.Name != want || filepath.Base(path) != want+".yaml" {
		t.Errorf("%s: name %q, want %s/%s.yaml", path, meta.Name, want, want)
	}
	if v := meta.Labels["app.kubernetes.io/version"]; !regexp.MustCompile(`^\d+\.\d+$`).MatchString(v) {
		t.Errorf("label app.kubernetes.io/version = %q", v)
	}
	for _, a := range []string{"tekton.dev/pipelines.minVersion", "tekton.dev/categories", "tekton.dev/tags", "tekton.dev/displayName", "tekton.dev/platforms"} {
		if meta.Annotations[a] == "" {
			t.Errorf("annotation %s missing", a)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "README.md")); err != nil {
		t.Errorf("%s has no README.md", dir)
	}
	if samples, _ := filepath.Glob(filepath.Join(dir, "samples", "*.yaml")); len(samples) == 0 {
		t.Errorf("%s has no samples", dir)
	}
	first, _, _ := strings.Cut(description, "\n")
	if first == "" || len(first) > 300 || !strings.HasSuffix(first, ".") {
		t.Errorf("description must open with a one-line summary ending in a period, got %q", first)
	}
}

func checkTask(t *testing.T, task *v1.Task) {
	t.Helper()
	defaults := map[string]string{}
	for _, p := range task.Spec.Params {
		if p.Default != nil {
			defaults[p.Name] = p.Default.StringVal
		}
	}
	for _, s := range task.Spec.Steps {
		img := s.Image
		if m := regexp.MustCompile(`^\$\(params\.([a-zA-Z0-9_-]+)\)$`).FindStringSubmatch(img); m != nil {
			d, ok := defaults[m[1]]
			if !ok {
				t.Errorf("step %s: image param %s has no default", s.Name, m[1])
				continue
			}
			img = d
		}
		if err := pinned(img); err != nil {
			t.Errorf("step %s: %v", s.Name, err)
		}
		if err := projectImage(img); err != nil {
			t.Errorf("step %s: %v", s.Name, err)
		}
		checkExecForm(t, s.Name, s.Script, s.Command)
		var names []string
		for _, r := range task.Spec.Results {
			names = append(names, r.Name)
		}
		checkResults(t, names)
	}
	for _, r := range task.Spec.Results {
		// Chains reads *IMAGE_URL / *IMAGE_DIGEST results as "this task built the image".
		if strings.HasSuffix(r.Name, "IMAGE_URL") || strings.HasSuffix(r.Name, "IMAGE_DIGEST") {
			t.Errorf("result %s would make Tekton Chains treat this task as the image's builder", r.Name)
		}
	}
}

func stepActionResultNames(s *v1beta1.StepAction) []string {
	var names []string
	for _, r := range s.Spec.Results {
		names = append(names, r.Name)
	}
	return names
}

// checkResults asserts that every result is a bounded id, digest or URI and
// that all of them fit the budget.
func checkResults(t *testing.T, names []string) {
	t.Helper()
	total := 0
	for _, n := range names {
		bound, ok := resultBounds[n]
		if !ok {
			t.Errorf("result %s is not one of the bounded results (ids, digests, URIs)", n)
			continue
		}
		total += bound + perResultOverhead
	}
	if total > terminationBudget/2 {
		t.Errorf("results may take %d bytes, want at most half of the %d-byte budget", total, terminationBudget)
	}
}

// ProjectImage is the repository of Trustfabric's container image (built by
// devtools/image): every step runs the CLI it carries. PlaceholderDigest is
// the digest the repository's manifests name it by; the release replaces it
// (devtools/release --pin-image).
const (
	ProjectImage      = "ghcr.io/trustfabric/trustfabric"
	PlaceholderDigest = "sha256:0000000000000000000000000000000000000000000000000000000000000000"
	cliPath           = "/usr/local/bin/trustfabric"
)

// errNotProjectImage marks a step image other than Trustfabric's.
var errNotProjectImage = errors.New("step image is not the Trustfabric image")

func projectImage(img string) error {
	if !strings.HasPrefix(img, ProjectImage+":") && !strings.HasPrefix(img, ProjectImage+"@") {
		return fmt.Errorf("%w: %q", errNotProjectImage, img)
	}
	return nil
}

// checkExecForm: a step runs the image's CLI directly. The image has no
// shell, and nothing may be installed at run time.
func checkExecForm(t *testing.T, step, script string, command []string) {
	t.Helper()
	if script != "" {
		t.Errorf("step %s has a script; the image has no shell: run the CLI with command and args", step)
	}
	if len(command) != 1 || command[0] != cliPath {
		t.Errorf("step %s: command %q, want [%s]", step, command, cliPath)
	}
}

func pinned(img string) error {
	if !pinnedRE.MatchString(img) {
		return fmt.Errorf("%w: %q", errNotPinned, img)
	}
	return nil
}

// TestVerifyStepMatchesTask keeps the StepAction and the Task on one script.
func TestVerifyStepMatchesTask(t *testing.T) {
	tb, err := os.ReadFile(filepath.Join("task", "trustfabric-verify", "trustfabric-verify.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	sb, err := os.ReadFile(filepath.Join("stepaction", "trustfabric-verify", "trustfabric-verify.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	task, err := validate(tb)
	if err != nil {
		t.Fatal(err)
	}
	step, err := validate(sb)
	if err != nil {
		t.Fatal(err)
	}
	// The same command and flags; only where the policy and the result
	// file live differ (a workspace path in the Task, a param in the step).
	ts, ss := task.(*v1.Task).Spec.Steps[0], step.(*v1beta1.StepAction).Spec
	if !slices.Equal(ts.Command, ss.Command) || !slices.Equal(flagNames(ts.Args), flagNames(ss.Args)) {
		t.Errorf("the verify Task and StepAction run different commands:\n--- task\n%q %q\n--- step action\n%q %q",
			ts.Command, ts.Args, ss.Command, ss.Args)
	}
}

// flagNames is the subcommand and the --flag names of args, in order.
func flagNames(args []string) []string {
	var names []string
	for i, a := range args {
		if name, _, _ := strings.Cut(a, "="); strings.HasPrefix(a, "--") || i == 0 {
			names = append(names, name)
		}
	}
	return names
}

// TestAttestIdentityVolume pins the identity wiring: a projected token whose
// audience is the identity-server param, mounted into the step.
func TestAttestIdentityVolume(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("task", "trustfabric-attest", "trustfabric-attest.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	obj, err := validate(b)
	if err != nil {
		t.Fatal(err)
	}
	task := obj.(*v1.Task)
	var found bool
	for _, v := range task.Spec.Volumes {
		if v.Projected == nil {
			continue
		}
		for _, s := range v.Projected.Sources {
			if s.ServiceAccountToken != nil && s.ServiceAccountToken.Audience == "$(params.identity-server)" {
				found = true
				if e := s.ServiceAccountToken.ExpirationSeconds; e == nil || *e > 3600 {
					t.Errorf("token lifetime %v, want at most an hour", e)
				}
			}
		}
	}
	if !found {
		t.Fatal("no projected ServiceAccount token with the identity server as audience")
	}
	// Mounted where the CLI looks by default (pkg/ci/tekton DefaultPath).
	if m := task.Spec.Steps[0].VolumeMounts; len(m) != 1 || m[0].Name != "identity-token" || !m[0].ReadOnly ||
		m[0].MountPath != "/var/run/secrets/trustfabric" {
		t.Errorf("step mounts %v, want identity-token read-only at /var/run/secrets/trustfabric", m)
	}
	// The CLI writes the results itself, into Tekton's results directory.
	if !slices.Contains(task.Spec.Steps[0].Args, "--tekton-results-dir=/tekton/results") {
		t.Error("the attest step does not pass --tekton-results-dir=/tekton/results")
	}
}

// TestRejects shows the checks are not vacuous: each broken manifest in
// testdata fails for the expected reason.
func TestRejects(t *testing.T) {
	tests := []struct {
		file  string
		check func([]byte) error
	}{
		{"unknown-field.yaml", func(b []byte) error { _, err := validate(b); return err }},
		{"undeclared-param.yaml", func(b []byte) error { _, err := validate(b); return err }},
		{"script-and-command.yaml", func(b []byte) error { _, err := validate(b); return err }},
		{"unpinned-image.yaml", func(b []byte) error {
			obj, err := validate(b)
			if err != nil {
				return fmt.Errorf("should validate: %w", err)
			}
			return pinned(obj.(*v1.Task).Spec.Steps[0].Image)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join("testdata", tt.file))
			if err != nil {
				t.Fatal(err)
			}
			err = tt.check(b)
			if err == nil {
				t.Fatal("accepted")
			}
			if tt.file == "unpinned-image.yaml" && !errors.Is(err, errNotPinned) {
				t.Fatalf("got %v, want errNotPinned", err)
			}
			t.Log(err)
		})
	}
}

// TestNoRunTimeInstall: no Task, StepAction, sample or example installs or
// downloads the CLI when it runs (the step image carries it), and every image
// reference to Trustfabric names the project's image by digest.
func TestNoRunTimeInstall(t *testing.T) {
	install := regexp.MustCompile(`go install|go build|curl |wget |apk add|apt-get|cli-version|install\.sh`)
	image := regexp.MustCompile(regexp.QuoteMeta(ProjectImage) + `[^\s"',\]]*`)
	for _, f := range manifests(t) {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if m := install.Find(b); m != nil {
			t.Errorf("%s: %q: installs at run time", f, m)
		}
		for _, ref := range image.FindAllString(string(b), -1) {
			if err := pinned(ref); err != nil {
				t.Errorf("%s: %v", f, err)
			}
		}
	}
}
