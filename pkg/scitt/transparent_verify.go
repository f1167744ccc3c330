package scitt

import (
	"fmt"
)

// VerifyTransparentStatement verifies the receipts of a Transparent
// Statement against the given service keys: every receipt signed by one of
// them (its kid names one, or it has no kid) must verify under leaf, and at
// least one must. Receipts from services whose keys are not given are
// skipped. With issuer keys, the statement itself is verified too (opts
// apply to that check).
func VerifyTransparentStatement(statement []byte, service KeySet, leaf LeafConvention, issuer KeySet, opts ...VerifyOption) (*Result, error) {
	res := &Result{}
	s, err := ParseStatement(statement)
	if err != nil {
		return res.fail("statement.parse", err)
	}
	if issuer != nil {
		sr, err := s.Verify(issuer, opts...)
		res.Checks = append(res.Checks, sr.Checks...)
		if err != nil {
			return res, err
		}
	}
	if len(s.Receipts) == 0 {
		return res.fail("receipts", fmt.Errorf("%w: the statement carries no receipts (394)", ErrKeyNotFound))
	}
	verified := 0
	for i, rb := range s.Receipts {
		prefix := fmt.Sprintf("receipt[%d].", i)
		r, err := ParseReceipt(rb)
		if err != nil {
			return res.fail(prefix+"parse", err)
		}
		if !r.namedBy(service) {
			continue
		}
		rr, err := r.VerifyInclusion(s.Registered(), service, leaf)
		for _, c := range rr.Checks {
			c.Name = prefix + c.Name
			res.Checks = append(res.Checks, c)
		}
		if err != nil {
			return res, fmt.Errorf("receipt %d: %w", i, err)
		}
		verified++
	}
	if verified == 0 {
		return res.fail("receipts", fmt.Errorf("%w: none of the %d receipts is signed by a given service key", ErrKeyNotFound, len(s.Receipts)))
	}
	return res, nil
}

// namesAny reports whether kid names a key of ks; an empty kid names every
// key (the receipt must then verify under one of them).
func namesAny(kid []byte, ks KeySet) bool {
	if len(kid) == 0 {
		return len(ks) > 0
	}
	for _, k := range ks {
		if k.matches(kid) {
			return true
		}
	}
	return false
}
