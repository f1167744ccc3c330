package admission

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/trustfabric/trustfabric/pkg/oci"
	"github.com/trustfabric/trustfabric/pkg/policy"
)

// Multi-arch rules (MultiArchResult.Rule).
const (
	// RulePlatforms: an index whose own statements do not allow it is
	// allowed when every platform manifest it lists is.
	RulePlatforms = "every platform manifest of the index"
	// RuleIndex: a platform digest whose own statements do not allow it is
	// allowed when its index is (MultiArch.PlatformViaIndex).
	RuleIndex = "the index listing the platform digest"
)

// MaxPlatforms bounds the platform manifests of one index verified under
// RulePlatforms; an index listing more is denied unless it is attested
// itself.
const MaxPlatforms = 32

// MultiArchResult is the outcome of a multi-arch rule.
type MultiArchResult struct {
	Rule string
	// Parts are the decisions the rule needed: one per platform manifest
	// (RulePlatforms), or the index's (RuleIndex).
	Parts []Part
	// Err is why the rule could not be applied.
	Err error
}

// Part is one manifest a multi-arch rule verified.
type Part struct {
	// Name is the platform (os/architecture[/variant]) or "index", and Ref
	// the manifest as repository@digest.
	Name, Ref string
	Decision  *policy.Decision
	Err       error
}

func (m *MultiArchResult) allowed() bool {
	if m == nil || m.Err != nil || len(m.Parts) == 0 {
		return false
	}
	for _, p := range m.Parts {
		if p.Err != nil || p.Decision == nil || !p.Decision.Allowed {
			return false
		}
	}
	return true
}

// multiArch applies the multi-arch rules to an image its own statements do
// not allow; nil when no rule applies.
func (w *Webhook) multiArch(ctx context.Context, v *policy.Verifier, r *ImageResult) *MultiArchResult {
	m, err := w.oci.GetManifest(ctx, r.Ref)
	if err != nil {
		return &MultiArchResult{Rule: RulePlatforms, Err: fmt.Errorf("read the manifest: %w", explain(ctx, err))}
	}
	if m.IsIndex() {
		res := &MultiArchResult{Rule: RulePlatforms}
		switch {
		case len(m.Platforms) == 0:
			res.Err = errors.New("the index lists no platform manifest")
		case len(m.Platforms) > MaxPlatforms:
			res.Err = fmt.Errorf("%w: the index lists %d platform manifests; the limit is %d (attest the index itself)", ErrTooMany, len(m.Platforms), MaxPlatforms)
		default:
			res.Parts = make([]Part, len(m.Platforms))
			var wg sync.WaitGroup
			for i, p := range m.Platforms {
				res.Parts[i] = Part{Name: platformName(p), Ref: m.Repository + "@" + p.Digest}
				wg.Add(1)
				go func(part *Part) {
					defer wg.Done()
					part.Decision, part.Err = v.Verify(ctx, part.Ref)
					if part.Err != nil {
						part.Err = explain(ctx, part.Err)
					}
				}(&res.Parts[i])
			}
			wg.Wait()
		}
		return res
	}
	if !w.cfg.MultiArch.PlatformViaIndex {
		return nil
	}
	// Without a tag there is no index to ask (most denied images are not
	// platform manifests at all, so no hint is added either), and a tag
	// naming an image manifest (what /mutate writes) is no index.
	tagged, ok := taggedIndex(r.Image)
	if !ok {
		return nil
	}
	ix, err := w.oci.GetManifest(ctx, tagged)
	if err != nil {
		return &MultiArchResult{Rule: RuleIndex, Err: fmt.Errorf("resolve %s: %w", tagged, explain(ctx, err))}
	}
	if !ix.IsIndex() {
		return nil
	}
	if !ix.Lists(r.Digest) {
		return &MultiArchResult{Rule: RuleIndex, Err: fmt.Errorf("the index %s (%s) does not list %s", tagged, ix.Digest, r.Digest)}
	}
	p := Part{Name: "index", Ref: ix.Repository + "@" + ix.Digest}
	p.Decision, p.Err = v.Verify(ctx, p.Ref)
	if p.Err != nil {
		p.Err = explain(ctx, p.Err)
	}
	return &MultiArchResult{Rule: RuleIndex, Parts: []Part{p}}
}

// taggedIndex returns REPO:TAG of a reference written REPO:TAG@DIGEST.
func taggedIndex(image string) (string, bool) {
	base, _, ok := strings.Cut(image, "@")
	if !ok {
		return "", false
	}
	slash := strings.LastIndexByte(base, '/')
	colon := strings.LastIndexByte(base, ':')
	if colon <= slash || colon == len(base)-1 {
		return "", false
	}
	return base, true
}

func platformName(d oci.Descriptor) string {
	if d.Platform == nil {
		return "platform ?"
	}
	n := "platform " + d.Platform.OS + "/" + d.Platform.Architecture
	if d.Platform.Variant != "" {
		n += "/" + d.Platform.Variant
	}
	return n
}
