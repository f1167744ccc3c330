package policy

import (
	"fmt"
	"slices"

	"github.com/trustfabric/trustfabric/pkg/scitt"
)

// witnessedBy lists the services among names whose receipts had their
// witness cosignatures checked.
func (v *Verifier) witnessedBy(names []string) []string {
	var out []string
	for _, svc := range v.services {
		if svc.witnesses != nil && slices.Contains(names, svc.name) {
			out = append(out, svc.name)
		}
	}
	return out
}

// checkWitnessed checks the cosignatures on the checkpoint a verified
// receipt carries: the checkpoint must be the receipt's tree (its size and
// the root the receipt's proof leads to) and be cosigned by enough trusted
// witnesses. A receipt from a forked log has a root no honest witness
// cosigned.
func checkWitnessed(r *scitt.Receipt, registered []byte, svc service) error {
	if len(r.Inclusion) == 0 {
		return fmt.Errorf("%w: no inclusion proof", scitt.ErrWitness)
	}
	// The receipt verified under one leaf convention; the root of that one
	// is the signed root. Roots under another convention are other values,
	// which no checkpoint matches.
	var first error
	for _, c := range []scitt.LeafConvention{svc.leaf, scitt.LeafIETF, scitt.LeafDirect} {
		if c == scitt.LeafAuto {
			continue
		}
		root, err := r.Root(scitt.LeafHash(registered, c))
		if err == nil {
			if _, err = scitt.VerifyCosigned(r.Checkpoint, r.Inclusion[0].TreeSize, root, *svc.witnesses); err == nil {
				return nil
			}
		}
		if first == nil {
			first = err
		}
	}
	return first
}
