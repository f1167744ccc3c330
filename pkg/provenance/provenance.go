// Package provenance builds in-toto Statements (v1) carrying a SLSA Provenance v1 predicate
// from the context of a CI run, and accepts statements that users supply themselves.
//
// Specifications:
//   - in-toto Attestation Framework, Statement v1:
//     https://github.com/in-toto/attestation/blob/main/spec/v1/statement.md
//   - SLSA Provenance v1: https://slsa.dev/spec/v1.0/provenance
//   - GitHub Actions build type: https://actions.github.io/buildtypes/workflow/v1
//
// # Build types
//
// GitHub Actions runs use the GitHub build type (the same shape as actions/attest-build-provenance).
// GitLab CI and Tekton have no published build type for in-job provenance; Trustfabric defines
// [BuildTypeGitLab] and [BuildTypeTekton] with the parameters documented in docs/design/oci.md.
//
// # Output
//
// [Build] returns the statement as stable JSON: object keys sorted, no insignificant
// whitespace, so the same context and subjects always give the same bytes. The bytes are the
// preimage of a SCITT hash-envelope statement: they are never re-encoded afterwards.
package provenance

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	prov "github.com/in-toto/attestation/go/predicates/provenance/v1"
	intoto "github.com/in-toto/attestation/go/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/trustfabric/trustfabric/pkg/ci"
)

// Type URIs and media types.
const (
	StatementType        = "https://in-toto.io/Statement/v1"
	PredicateSLSAv1      = "https://slsa.dev/provenance/v1"
	MediaType            = "application/vnd.in-toto+json"
	BuildTypeGitHub      = "https://actions.github.io/buildtypes/workflow/v1"
	BuildTypeGitLab      = "https://trustfabric.dev/buildtypes/gitlab-ci/v1"
	BuildTypeTekton      = "https://trustfabric.dev/buildtypes/tekton/v1"
	defaultTektonBuilder = "https://trustfabric.dev/builders/tekton/v1"
)

// ErrNoSubjects is returned when a statement would have no subject.
var ErrNoSubjects = errors.New("provenance needs at least one subject")

// Subject is one artifact the provenance describes: a name and its digests
// (algorithm → lowercase hex).
type Subject struct {
	Name   string
	Digest map[string]string
}

// Option configures [Build].
type Option func(*options) error

type options struct {
	now       func() time.Time
	builderID string
}

// WithBuilderID sets runDetails.builder.id. Default: the platform's builder
// for the run (on GitHub, the run's workflow at its ref). An isolated attest
// workflow (a reusable workflow called by the build) names itself here: it,
// not its caller, is the builder that wrote and signed the provenance.
func WithBuilderID(id string) Option {
	return func(o *options) error {
		if id == "" {
			return errors.New("provenance: empty builder id")
		}
		o.builderID = id
		return nil
	}
}

// WithClock sets the clock used for runDetails.metadata.startedOn when the platform does
// not document the run's start time. Default: time.Now.
func WithClock(now func() time.Time) Option {
	return func(o *options) error { o.now = now; return nil }
}

// Build returns the in-toto Statement v1 with a SLSA Provenance v1 predicate describing
// subjects as built by the CI run c, as stable JSON.
func Build(c *ci.Context, subjects []Subject, opts ...Option) ([]byte, error) {
	o := options{now: time.Now}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	if len(subjects) == 0 {
		return nil, ErrNoSubjects
	}
	pred, err := predicate(c, o)
	if err != nil {
		return nil, err
	}
	if err := pred.Validate(); err != nil {
		return nil, fmt.Errorf("provenance predicate: %w", err)
	}
	pj, err := protojson.Marshal(pred)
	if err != nil {
		return nil, fmt.Errorf("encode predicate: %w", err)
	}
	ps := &structpb.Struct{}
	if err := protojson.Unmarshal(pj, ps); err != nil {
		return nil, fmt.Errorf("encode predicate: %w", err)
	}
	st := &intoto.Statement{Type: StatementType, PredicateType: PredicateSLSAv1, Predicate: ps}
	for _, s := range subjects {
		st.Subject = append(st.Subject, &intoto.ResourceDescriptor{Name: s.Name, Digest: s.Digest})
	}
	if err := st.Validate(); err != nil {
		return nil, fmt.Errorf("statement: %w", err)
	}
	sj, err := protojson.Marshal(st)
	if err != nil {
		return nil, fmt.Errorf("encode statement: %w", err)
	}
	return stableJSON(sj)
}

// stableJSON re-encodes JSON with sorted keys and no insignificant whitespace.
// protojson deliberately randomises its whitespace, so its output is never used as is.
func stableJSON(b []byte) ([]byte, error) {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, fmt.Errorf("stable json: %w", err)
	}
	var buf bytes.Buffer
	e := json.NewEncoder(&buf)
	e.SetEscapeHTML(false)
	if err := e.Encode(v); err != nil {
		return nil, fmt.Errorf("stable json: %w", err)
	}
	return bytes.TrimRight(buf.Bytes(), "\n"), nil
}

func predicate(c *ci.Context, o options) (*prov.Provenance, error) {
	if c == nil {
		return nil, errors.New("provenance: nil CI context")
	}
	started := c.StartedOn
	if started.IsZero() {
		started = o.now().UTC().Truncate(time.Second)
	}
	invocation := c.InvocationURL
	if invocation == "" {
		invocation = c.RunID
	}
	dep := &intoto.ResourceDescriptor{
		Uri:    "git+" + c.RepositoryURL,
		Digest: map[string]string{"gitCommit": c.Commit},
	}
	if c.Ref != "" {
		dep.Uri += "@" + c.Ref
	}
	var (
		buildType, builderID string
		ext, internal        map[string]any
	)
	switch c.Platform {
	case ci.GitHub:
		buildType = BuildTypeGitHub
		builderID = c.ServerURL + "/" + c.ConfigRepository + "/" + c.WorkflowPath + "@" + c.WorkflowRef
		wf := map[string]any{"ref": c.WorkflowRef, "repository": c.ServerURL + "/" + c.ConfigRepository, "path": c.WorkflowPath}
		ext = map[string]any{"workflow": wf}
		if len(c.Inputs) > 0 {
			ext["inputs"] = stringMap(c.Inputs)
		}
		internal = map[string]any{"github": nonEmpty(map[string]string{
			"event_name": c.Event, "repository_id": c.RepositoryID, "repository_owner_id": c.OwnerID,
			"runner_environment": c.RunnerEnvironment,
		})}
	case ci.GitLab:
		buildType = BuildTypeGitLab
		builderID = c.ServerURL + "/" + c.Repository + "/-/runners/" + c.RunnerID
		if c.RunnerID == "" {
			builderID = c.ServerURL + "/" + c.Repository + "/-/runners"
		}
		ext = map[string]any{
			"pipeline": map[string]any{"repository": c.RepositoryURL, "path": c.WorkflowPath, "ref": c.WorkflowRef},
			"source":   c.Event,
			"job":      c.Extra["CI_JOB_NAME"],
		}
		internal = map[string]any{"gitlab": nonEmpty(map[string]string{
			"project_id": c.RepositoryID, "namespace_id": c.OwnerID, "pipeline_id": c.RunID, "job_id": c.JobID,
			"runner_id": c.RunnerID, "runner_environment": c.RunnerEnvironment,
			"runner_version": c.Extra["CI_RUNNER_VERSION"], "job_stage": c.Extra["CI_JOB_STAGE"],
		})}
	case ci.Tekton:
		buildType = BuildTypeTekton
		builderID = c.Extra["TEKTON_BUILDER_ID"]
		if builderID == "" {
			builderID = defaultTektonBuilder
		}
		ext = map[string]any{
			"pipeline":    map[string]any{"repository": c.RepositoryURL, "path": c.WorkflowPath, "ref": c.Ref},
			"pipelineRun": c.Extra["TEKTON_PIPELINERUN_NAME"],
		}
		internal = map[string]any{"tekton": nonEmpty(map[string]string{
			"namespace": c.Extra["TEKTON_NAMESPACE"], "taskRun": c.Extra["TEKTON_TASKRUN_NAME"],
			"taskRunUID": c.JobID, "pipelineRunUID": c.RunID,
		})}
	default:
		return nil, fmt.Errorf("provenance: unknown CI platform %q", c.Platform)
	}
	if o.builderID != "" {
		builderID = o.builderID
	}
	extS, err := structpb.NewStruct(ext)
	if err != nil {
		return nil, fmt.Errorf("external parameters: %w", err)
	}
	intS, err := structpb.NewStruct(internal)
	if err != nil {
		return nil, fmt.Errorf("internal parameters: %w", err)
	}
	return &prov.Provenance{
		BuildDefinition: &prov.BuildDefinition{
			BuildType:            buildType,
			ExternalParameters:   extS,
			InternalParameters:   intS,
			ResolvedDependencies: []*intoto.ResourceDescriptor{dep},
		},
		RunDetails: &prov.RunDetails{
			Builder:  &prov.Builder{Id: builderID},
			Metadata: &prov.BuildMetadata{InvocationId: invocation, StartedOn: timestamppb.New(started)},
		},
	}, nil
}

func nonEmpty(m map[string]string) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		if v != "" {
			out[k] = v
		}
	}
	return out
}

func stringMap(m map[string]string) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
