package policy

import (
	"encoding/json"
	"strings"

	"github.com/trustfabric/trustfabric/pkg/provenance"
	"github.com/trustfabric/trustfabric/pkg/scitt"
)

// Facts are what a candidate's checks established, for a consumer that
// needs them without the evidence (a selective-disclosure credential,
// pkg/credential). Only a candidate that passed every check has Facts.
type Facts struct {
	// ServiceIssuer is the iss of the earliest trusted receipt (the
	// Transparency Service that registered the statement first) and
	// LogIndex the statement's leaf index in that service's log.
	ServiceIssuer string `json:"serviceIssuer,omitempty"`
	LogIndex      uint64 `json:"logIndex"`
	// PredicateType is the in-toto predicate type (empty for other
	// payloads).
	PredicateType string `json:"predicateType,omitempty"`
	// The build, from SLSA provenance: the builder id, the source
	// repository, commit and ref, and the trigger. For a statement signed
	// under a WIT, the ref and trigger are the ones the Identity Server
	// signed into it when it carries them (what the gate decided on).
	BuilderID        string `json:"builderID,omitempty"`
	SourceRepository string `json:"sourceRepository,omitempty"`
	SourceCommit     string `json:"sourceCommit,omitempty"`
	SourceRef        string `json:"sourceRef,omitempty"`
	Trigger          string `json:"trigger,omitempty"`
	// Result is the top-level "result" of another predicate, when it has
	// one (in-toto test-result v0.1: PASSED, WARNED or FAILED).
	Result string `json:"result,omitempty"`
}

// newFacts reads the facts of a verified candidate.
func newFacts(first *scitt.Receipt, p *provenance.Payload, claims map[string]any, isProvenance bool) *Facts {
	f := &Facts{PredicateType: p.PredicateType()}
	if first != nil {
		f.ServiceIssuer = first.Issuer
		if len(first.Inclusion) > 0 {
			f.LogIndex = first.Inclusion[0].LeafIndex
		}
	}
	if p.Kind != provenance.KindInToto || p.Statement == nil {
		return f
	}
	raw := p.Statement.Raw
	if p.Statement.MediaType == provenance.DSSEMediaType {
		var dsse struct {
			Payload []byte `json:"payload"`
		}
		if json.Unmarshal(raw, &dsse) != nil {
			return f
		}
		raw = dsse.Payload
	}
	if !isProvenance {
		var st struct {
			Predicate struct {
				Result string `json:"result"`
			} `json:"predicate"`
		}
		if json.Unmarshal(raw, &st) == nil {
			f.Result = st.Predicate.Result
		}
		return f
	}
	var st struct {
		Predicate slsa `json:"predicate"`
	}
	if json.Unmarshal(raw, &st) != nil {
		return f
	}
	pr := st.Predicate
	f.BuilderID, f.Trigger = pr.RunDetails.Builder.ID, triggerOf(pr)
	if deps := pr.BuildDefinition.ResolvedDependencies; len(deps) > 0 {
		f.SourceRepository, f.SourceRef, _ = strings.Cut(strings.TrimPrefix(deps[0].URI, "git+"), "@")
		f.SourceCommit = deps[0].Digest["gitCommit"]
	}
	if claims != nil {
		signed := factsFrom(claims)
		if signed.ref != "" {
			f.SourceRef = signed.ref
		}
		if signed.trigger != "" {
			f.Trigger = signed.trigger
		}
	}
	return f
}
