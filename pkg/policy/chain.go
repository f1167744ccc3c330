package policy

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/trustfabric/trustfabric/pkg/oci"
	"github.com/trustfabric/trustfabric/pkg/provenance"
	"github.com/trustfabric/trustfabric/pkg/scitt"
	"github.com/trustfabric/trustfabric/pkg/witstatement"
)

// payloadMemo remembers, for one verification, the preimages already
// parsed, by layer digest and declared content type: referrers sharing a
// preimage blob parse it once.
type payloadMemo map[string]payloadResult

type payloadResult struct {
	p   *provenance.Payload
	err error
}

// evaluate runs the chain of design §1 step 6 on one referrer.
func (v *Verifier) evaluate(e *oci.Entry, digest string, memo payloadMemo) Candidate {
	c := Candidate{Referrer: e.Descriptor.Digest}
	if e.Err != nil {
		c.fail(CheckReferrer, e.Err)
		return c
	}
	if len(e.Statement) == 0 {
		c.fail(CheckReferrer, errors.New("the referrer has no statement layer"))
		return c
	}
	c.pass(CheckReferrer, "")

	s, err := scitt.ParseStatement(e.Statement)
	if err != nil {
		c.fail(CheckStatement, err)
		return c
	}
	c.Issuer, c.Subject = s.Issuer, s.Subject
	entry := s.EntryHash()
	c.EntryID = hex.EncodeToString(entry[:])
	c.pass(CheckStatement, "")

	if !aboutDigest(s.Subject, digest) {
		c.fail(CheckSubject, fmt.Errorf("%w: the statement is about %q, not %s", ErrWrongSubject, s.Subject, digest))
		return c
	}
	c.pass(CheckSubject, s.Subject)

	regTime, services, first, err := v.checkReceipts(s)
	if errors.Is(err, ErrWitnesses) {
		c.fail(CheckWitnesses, err)
		return c
	}
	if err != nil {
		c.fail(CheckReceipts, err)
		return c
	}
	c.RegisteredAt, c.Services = regTime, services
	c.pass(CheckReceipts, "registered with "+strings.Join(services, ", "))
	if w := v.witnessedBy(services); len(w) > 0 {
		c.pass(CheckWitnesses, "checkpoints cosigned by enough trusted witnesses for "+strings.Join(w, ", "))
	}

	claims, err := v.checkSignature(s, regTime)
	if err != nil {
		c.fail(CheckSignature, err)
		return c
	}
	c.pass(CheckSignature, "")

	if len(e.Preimage) == 0 {
		c.fail(CheckPreimage, errors.New("the referrer has no preimage layer"))
		return c
	}
	// A SHA-256 hash envelope whose payload is the preimage layer's digest
	// needs no second hash: pkg/oci checked the bytes against that digest.
	sameDigest := s.IsHashEnvelope() && s.PayloadHashAlg == scitt.AlgSHA256 && e.PreimageDigest == "sha256:"+hex.EncodeToString(s.Payload)
	if !sameDigest {
		if err := s.CheckPreimage(e.Preimage); err != nil {
			c.fail(CheckPreimage, fmt.Errorf("the attached preimage is not the payload that was signed: %w", err))
			return c
		}
	}
	c.pass(CheckPreimage, "")

	payload, err := v.checkPayload(s, e.Preimage, e.PreimageDigest, digest, memo, &c)
	if err != nil {
		c.fail(CheckPayload, err)
		return c
	}
	c.pass(CheckPayload, c.Payload+" ("+strings.Join(c.Satisfies, ", ")+")")

	rule, err := v.checkIdentity(s.Issuer, claims)
	if err != nil {
		c.fail(CheckIdentity, err)
		return c
	}
	c.pass(CheckIdentity, "allowed by "+rule.String())

	facts := claims
	if rule.SelfReportedProvenance {
		facts = nil // the policy trusts this workload to describe its build
	}
	if payload.Kind != provenance.KindInToto || !contains(v.p.Provenance.PredicateTypes, payload.PredicateType()) {
		// The provenance rules are about builds: they apply to SLSA
		// provenance, not to SBOMs, VEX or other payloads.
		c.pass(CheckProvenance, "not provenance: the provenance rules do not apply")
		c.OK = true
		c.Facts = newFacts(first, payload, nil, false)
		return c
	}
	if err := v.checkProvenance(payload.Statement, digest, facts); err != nil {
		c.fail(CheckProvenance, err)
		return c
	}
	c.pass(CheckProvenance, "")
	c.OK = true
	c.Facts = newFacts(first, payload, facts, true)
	return c
}

// declaredContentType is the content type a statement declares for its
// payload: label 259 of a hash envelope, label 3 of an embedded payload.
func declaredContentType(s *scitt.Statement) string {
	if s.IsHashEnvelope() {
		return s.PreimageContentType
	}
	return s.ContentType
}

// checkPayload checks the preimage against the content type the statement
// declares (an in-toto statement strictly, and it must name the image; JSON
// types as JSON; others by the digest already checked) and matches it with
// the policy's payload rules. It records the payload and the requirements
// it meets in c.
func (v *Verifier) checkPayload(s *scitt.Statement, preimage []byte, preimageDigest, digest string, memo payloadMemo, c *Candidate) (*provenance.Payload, error) {
	ct := declaredContentType(s)
	key := preimageDigest + " " + ct
	r, ok := memo[key]
	if !ok || preimageDigest == "" {
		r.p, r.err = provenance.ParsePayload(ct, preimage)
		if preimageDigest != "" && memo != nil {
			memo[key] = r
		}
	}
	p, err := r.p, r.err
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrPayload, err)
	}
	c.Payload = p.MediaType
	if pt := p.PredicateType(); pt != "" {
		c.Payload = pt
	}
	if p.Kind == provenance.KindInToto {
		algo, hexDigest, _ := strings.Cut(digest, ":")
		covered := false
		for _, sub := range p.Statement.Subjects {
			if sub.Digest[algo] == hexDigest {
				covered = true
			}
		}
		if !covered {
			return nil, fmt.Errorf("%w: no subject of the in-toto statement has digest %s", ErrWrongSubject, digest)
		}
	}
	for _, r := range v.p.Payloads.Require {
		if r.matches(p) {
			c.Satisfies = append(c.Satisfies, r.String())
		}
	}
	if len(c.Satisfies) > 0 {
		return p, nil
	}
	for _, r := range v.p.Payloads.Allow {
		if r.matches(p) {
			c.Satisfies = append(c.Satisfies, "allowed: "+r.String())
			return p, nil
		}
	}
	kind := "content type " + p.MediaType
	if p.Kind == provenance.KindInToto {
		kind = "in-toto predicate type " + p.PredicateType()
	}
	return nil, fmt.Errorf("%w: %s is neither required nor allowed by the policy's payload rules", ErrPayload, kind)
}

// aboutDigest reports whether a statement subject names the image digest:
// "oci://registry/repo@sha256:…", "repo@sha256:…" or "sha256:…". Only the
// digest is compared: registries are reached under several names.
func aboutDigest(subject, digest string) bool {
	if subject == digest {
		return true
	}
	i := strings.LastIndexByte(subject, '@')
	return i >= 0 && subject[i+1:] == digest
}

// checkReceipts verifies the receipts of trusted services and returns the
// earliest registration time and the services that registered it.
// It also returns the earliest trusted receipt (its iss and log index go
// into Facts).
func (v *Verifier) checkReceipts(s *scitt.Statement) (time.Time, []string, *scitt.Receipt, error) {
	if len(s.Receipts) == 0 {
		return time.Time{}, nil, nil, fmt.Errorf("%w: the statement carries no receipts", ErrNoTrustedReceipt)
	}
	entry := s.EntryHash()
	entryID := hex.EncodeToString(entry[:])
	var (
		regTime time.Time
		names   []string
		first   *scitt.Receipt
		counted = make([]bool, len(v.services))
		seen    []string
		tooOld  error
	)
	for i, rb := range s.Receipts {
		r, err := scitt.ParseReceipt(rb)
		if err != nil {
			return time.Time{}, nil, nil, fmt.Errorf("receipt %d: %w", i, err)
		}
		if r.Issuer != "" {
			seen = append(seen, r.Issuer)
		}
		for j, svc := range v.services {
			if (svc.issuer != "" && r.Issuer != svc.issuer) || !svc.keys.Names(r.KID) {
				continue
			}
			// Every receipt is judged, in any order: one that a trusted
			// service's kid (or, without a kid, its issuer) names and that
			// does not verify rejects the statement even when another
			// receipt of the same service verifies.
			if _, err := r.VerifyInclusion(s.Registered(), svc.keys, svc.leaf); err != nil {
				if len(r.KID) == 0 && svc.issuer == "" {
					continue // an unnamed receipt, perhaps of another service
				}
				return time.Time{}, nil, nil, fmt.Errorf("%w: receipt %d from %s: %w", ErrBadReceipt, i, svc.name, err)
			}
			// Checked on receipts the service's key verified: ours name the
			// entry they prove, so one naming something else (a consistency
			// receipt with a grafted inclusion proof) is not a registration of
			// this statement; and without a registration time the identity
			// cannot be checked at registration.
			if r.Subject != "" && r.Subject != entryID {
				return time.Time{}, nil, nil, fmt.Errorf("%w: receipt %d from %s is for %q, not entry %s", ErrNoTrustedReceipt, i, svc.name, r.Subject, entryID)
			}
			if svc.witnesses != nil {
				if err := checkWitnessed(r, s.Registered(), svc); err != nil {
					return time.Time{}, nil, nil, fmt.Errorf("%w: receipt %d from %s: %w", ErrWitnesses, i, svc.name, err)
				}
			}
			if r.IssuedAt.IsZero() {
				return time.Time{}, nil, nil, fmt.Errorf("%w: receipt %d from %s has no registration time (CWT iat): the identity cannot be checked at registration", ErrNoTrustedReceipt, i, svc.name)
			}
			if max := time.Duration(v.p.MaxReceiptAge); max > 0 && v.now().Sub(r.IssuedAt) > max {
				// Too old is not tampering: it does not count, and says so
				// if too few receipts count.
				tooOld = fmt.Errorf("%w: receipt %d from %s was issued %s ago (at most %s)", ErrReceiptTooOld, i, svc.name, v.now().Sub(r.IssuedAt).Round(time.Second), max)
				break
			}
			if !counted[j] {
				counted[j] = true
				names = append(names, svc.name)
			}
			if regTime.IsZero() || r.IssuedAt.Before(regTime) {
				regTime, first = r.IssuedAt, r
			}
			break
		}
	}
	if len(names) < v.p.RequiredReceipts && tooOld != nil {
		return time.Time{}, nil, nil, tooOld
	}
	if len(names) < v.p.RequiredReceipts {
		from := "no trusted service"
		if len(names) > 0 {
			from = strings.Join(names, ", ")
		}
		detail := ""
		if len(seen) > 0 {
			detail = fmt.Sprintf(" (its receipts are from %s)", strings.Join(seen, ", "))
		}
		return time.Time{}, nil, nil, fmt.Errorf("%w: %d of %d required receipts verify, from %s%s", ErrNoTrustedReceipt, len(names), v.p.RequiredReceipts, from, detail)
	}
	return regTime, names, first, nil
}

// checkSignature verifies the statement's signature: with the key of its WIT
// (the WIT checked against the trusted bundles at the registration time), or
// with a pinned static issuer key. It returns the WIT's CI claims.
func (v *Verifier) checkSignature(s *scitt.Statement, regTime time.Time) (map[string]any, error) {
	if s.WIT != "" {
		if len(v.bundles) == 0 {
			return nil, fmt.Errorf("%w: the statement is signed by a workload identity, and the policy trusts no identity trust domain", ErrUntrustedIssuer)
		}
		// The WIT is checked at the registration time the receipts prove,
		// never at a time the signer chose.
		id, err := witstatement.Verify(s.Raw, v.bundles, witstatement.AtTime(regTime))
		if err != nil {
			return nil, err
		}
		claims := map[string]any{}
		if raw, ok := id.WIT.Claims[ciClaim]; ok {
			_ = json.Unmarshal(raw, &claims)
		}
		return claims, nil
	}
	for _, is := range v.issuers {
		if is.issuer != s.Issuer {
			continue
		}
		if _, err := s.Verify(is.keys); err != nil {
			return nil, err
		}
		return nil, nil
	}
	return nil, fmt.Errorf("%w: %q carries no workload identity token and has no pinned key in the policy", ErrUntrustedIssuer, s.Issuer)
}

// checkIdentity matches the workload identifier and the immutable claims.
func (v *Verifier) checkIdentity(id string, claims map[string]any) (Workload, error) {
	var mismatch error
	for _, w := range v.p.Workloads {
		if !w.match(id) {
			continue
		}
		ok := true
		for k, want := range w.Require {
			got, present := claims[k]
			if !present || fmt.Sprint(got) != want {
				ok = false
				if mismatch == nil {
					mismatch = fmt.Errorf("%w: %s matches %s, but its %s is %q, not %q", ErrNotAllowed, id, w, k, fmtClaim(got, present), want)
				}
				break
			}
		}
		if ok {
			return w, nil
		}
	}
	if mismatch != nil {
		return Workload{}, mismatch
	}
	return Workload{}, fmt.Errorf("%w: %s matches no workload rule of the policy", ErrNotAllowed, id)
}

func fmtClaim(v any, present bool) string {
	if !present {
		return "(absent)"
	}
	return fmt.Sprint(v)
}

// slsa is the part of a SLSA v1 provenance predicate the rules read.
type slsa struct {
	BuildDefinition struct {
		BuildType            string         `json:"buildType"`
		ExternalParameters   map[string]any `json:"externalParameters"`
		InternalParameters   map[string]any `json:"internalParameters"`
		ResolvedDependencies []struct {
			URI    string            `json:"uri"`
			Digest map[string]string `json:"digest"`
		} `json:"resolvedDependencies"`
	} `json:"buildDefinition"`
	RunDetails struct {
		Builder struct {
			ID string `json:"id"`
		} `json:"builder"`
	} `json:"runDetails"`
}

// signedFacts are the build facts the Identity Server signed into the WIT
// (its https://trustfabric.dev/ci claims). GitHub WITs carry repository,
// ref, event_name and job_workflow_ref (the builder); GitLab WITs carry
// project_path, ref_path, pipeline_source, runner_id and ci_config_ref_uri
// (whose first segment is the instance's host). Kubernetes and generic OIDC
// WITs carry none of them.
type signedFacts struct {
	platform      string // "github", "gitlab" or ""
	ref, trigger  string
	repo, repoURL string // repository path, and its URL when the host is signed
	workflows     []string
	runnerID      string
}

func factsFrom(claims map[string]any) signedFacts {
	str := func(k string) string {
		v, _ := claims[k].(string)
		return v
	}
	var f signedFacts
	switch {
	case str("repository") != "":
		f = signedFacts{platform: "github", repo: str("repository"), ref: str("ref"), trigger: str("event_name")}
		// The builder is the workflow whose job got the token and signed:
		// job_workflow_ref (a called reusable workflow, or the run's own
		// workflow); workflow_ref (the caller) only when the WIT lacks it.
		if w := str("job_workflow_ref"); w != "" {
			f.workflows = []string{w}
		} else if w := str("workflow_ref"); w != "" {
			f.workflows = []string{w}
		}
	case str("project_path") != "":
		f = signedFacts{platform: "gitlab", repo: str("project_path"), ref: str("ref_path"), trigger: str("pipeline_source"), runnerID: str("runner_id")}
		if host, _, ok := strings.Cut(str("ci_config_ref_uri"), "/"); ok && host != "" {
			f.repoURL = "https://" + host + "/" + f.repo
		}
	}
	return f
}

// checkProvenance applies the provenance rules to an in-toto statement of a
// provenance predicate type (checkPayload has checked that it names the
// image).
// The statement is written by the job that signed it, so for a statement
// bound to a WIT the ref, repository, trigger and builder rules are decided
// on the facts the Identity Server signed into the WIT, the provenance must
// agree with them, and a rule whose fact the WIT does not carry denies.
// Statements from static issuers are judged on their provenance alone (they
// are as good as their issuer).
func (v *Verifier) checkProvenance(st *provenance.Statement, digest string, claims map[string]any) error {
	rules := v.p.Provenance
	if len(rules.BuilderIDs)+len(rules.SourceRepositories)+len(rules.Refs)+len(rules.Triggers) == 0 {
		return nil
	}
	var env struct {
		Predicate slsa `json:"predicate"`
	}
	payload := st.Raw
	if st.MediaType == provenance.DSSEMediaType {
		var dsse struct {
			Payload []byte `json:"payload"`
		}
		if err := json.Unmarshal(st.Raw, &dsse); err != nil {
			return fmt.Errorf("%w: DSSE envelope: %w", ErrProvenance, err)
		}
		payload = dsse.Payload
	}
	if err := json.Unmarshal(payload, &env); err != nil {
		return fmt.Errorf("%w: SLSA predicate: %w", ErrProvenance, err)
	}
	p := env.Predicate
	repo, ref := "", ""
	if deps := p.BuildDefinition.ResolvedDependencies; len(deps) > 0 {
		repo, ref, _ = strings.Cut(strings.TrimPrefix(deps[0].URI, "git+"), "@")
	}
	builder, trigger := p.RunDetails.Builder.ID, triggerOf(p)
	signed := claims != nil
	facts := factsFrom(claims)
	unsigned := func(rule, fact string) error {
		return fmt.Errorf("%w: the workload identity carries no signed %s, so the %s rule cannot be decided on it (pin such workloads with workloads rules instead)", ErrProvenance, fact, rule)
	}

	if len(rules.BuilderIDs) > 0 {
		if !anyGlob(rules.BuilderIDs, builder) {
			return fmt.Errorf("%w: builder %q is not allowed", ErrProvenance, builder)
		}
		if signed {
			switch {
			case len(facts.workflows) > 0:
				if !endsWithAny(builder, facts.workflows) {
					return fmt.Errorf("%w: the provenance names builder %q, but the workload identity was issued to workflow %s", ErrProvenance, builder, strings.Join(facts.workflows, " / "))
				}
			case facts.runnerID != "":
				if !strings.HasSuffix(builder, "/-/runners/"+facts.runnerID) {
					return fmt.Errorf("%w: the provenance names builder %q, but the workload identity was issued to runner %s", ErrProvenance, builder, facts.runnerID)
				}
			default:
				return unsigned("builderIDs", "workflow or runner")
			}
		}
	}
	if len(rules.SourceRepositories) > 0 {
		if !anyGlob(rules.SourceRepositories, repo) {
			return fmt.Errorf("%w: source repository %q is not allowed", ErrProvenance, repo)
		}
		if signed {
			switch {
			case facts.repo == "":
				return unsigned("sourceRepositories", "repository")
			case facts.repoURL != "" && repo != facts.repoURL,
				facts.repoURL == "" && !strings.HasSuffix(repo, "/"+facts.repo):
				return fmt.Errorf("%w: the provenance names source %q, but the workload identity was issued to %s repository %q", ErrProvenance, repo, facts.platform, facts.repo)
			}
		}
	}
	// decide picks the value a ref or trigger rule is judged on: the signed
	// fact for a WIT-bound statement (the provenance must agree with it),
	// else what the provenance says.
	decide := func(rule, what, claimed, fact string) (string, error) {
		if !signed {
			return claimed, nil
		}
		if fact == "" {
			return "", unsigned(rule, what)
		}
		if claimed != "" && claimed != fact {
			return "", fmt.Errorf("%w: the provenance says %s %q, but the workload identity was issued for %q", ErrProvenance, what, claimed, fact)
		}
		return fact, nil
	}
	if len(rules.Refs) > 0 {
		decided, err := decide("refs", "ref", ref, facts.ref)
		if err != nil {
			return err
		}
		if !anyGlob(rules.Refs, decided) {
			return fmt.Errorf("%w: source ref %q is not allowed", ErrProvenance, decided)
		}
	}
	if len(rules.Triggers) > 0 {
		decided, err := decide("triggers", "trigger", trigger, facts.trigger)
		if err != nil {
			return err
		}
		if !contains(rules.Triggers, decided) {
			return fmt.Errorf("%w: build trigger %q is not one of %s", ErrProvenance, decided, strings.Join(rules.Triggers, ", "))
		}
	}
	return nil
}

func endsWithAny(s string, suffixes []string) bool {
	for _, x := range suffixes {
		if strings.HasSuffix(s, "/"+x) {
			return true
		}
	}
	return false
}

// triggerOf reads the event that started the build: GitHub's event_name,
// GitLab's pipeline source.
func triggerOf(p slsa) string {
	if gh, ok := p.BuildDefinition.InternalParameters["github"].(map[string]any); ok {
		if ev, ok := gh["event_name"].(string); ok {
			return ev
		}
	}
	if src, ok := p.BuildDefinition.ExternalParameters["source"].(string); ok {
		return src
	}
	return ""
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
