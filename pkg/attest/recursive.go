package attest

import (
	"context"
	"fmt"
	"strings"
)

// RunRecursive attests o.Image like Run and, when it is an image index (an
// OCI index or a Docker manifest list), then attests each platform manifest
// the index lists, each with a statement of its own (sub = the platform's
// digest, provenance built for it), in the order the index lists them. A
// statement about the index is not attached to its platforms: a verifier's
// subject check refuses a statement about another artifact, so each platform
// needs its own. Platform statements go to o.StatementOut + "-" + the first
// 12 hex digits of the platform digest when StatementOut is set.
//
// o.PredicateFile is refused: a given statement names its subjects, and one
// statement cannot be about the index and each platform at once.
//
// It returns the index's result and one result per platform attested; on an
// error the results so far.
func RunRecursive(ctx context.Context, o Options) (*Result, []*Result, error) {
	if o.PredicateFile != "" {
		return nil, nil, fmt.Errorf("%w: --recursive builds provenance for each platform; --predicate names its own subjects", ErrInput)
	}
	if err := o.defaults(); err != nil {
		return nil, nil, err
	}
	res, err := Run(ctx, o)
	if err != nil {
		return res, nil, err
	}
	m, err := o.Registry.GetManifest(ctx, res.Repository+"@"+res.Digest)
	if err != nil {
		return res, nil, &StepError{Step: StepAttach, Err: fmt.Errorf("read the index to attest its platforms: %w", err)}
	}
	var platforms []*Result
	for _, p := range m.Platforms {
		po := o
		po.Image = m.Repository + "@" + p.Digest
		if o.StatementOut != "" {
			_, hex, _ := strings.Cut(p.Digest, ":")
			po.StatementOut = o.StatementOut + "-" + hex[:min(12, len(hex))]
		}
		pr, err := Run(ctx, po)
		if pr != nil {
			platforms = append(platforms, pr)
		}
		if err != nil {
			return res, platforms, fmt.Errorf("platform %s: %w", p.Digest, err)
		}
	}
	return res, platforms, nil
}
