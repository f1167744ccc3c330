package scitt

import (
	"fmt"

	"github.com/trustfabric/trustfabric/pkg/keys"
)

// VerifyTransparentStatement verifies the receipts of a Transparent
// Statement against the given service keys: every receipt signed by one of
// them (its kid names one, or it has no kid) must verify under leaf, and at
// least one must. Receipts from services whose keys are not given are
// skipped. With issuer keys, the statement itself is verified too (opts
// apply to that check).
func VerifyTransparentStatement(statement []byte, service keys.Set, leaf LeafConvention, issuer keys.Set, opts ...VerifyOption) (*Result, error) {
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
	var unnamed []int
	for i, rb := range s.Receipts {
		prefix := fmt.Sprintf("receipt[%d].", i)
		r, err := ParseReceipt(rb)
		if err != nil {
			return res.fail(prefix+"parse", err)
		}
		if !r.namedBy(service) {
			unnamed = append(unnamed, i)
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
	// The kid-matching rule's last step (package keys): when no receipt's
	// kid names a given key, a receipt that verifies under one of them
	// counts; one that does not is another service's and is skipped.
	for _, i := range unnamed {
		if verified > 0 {
			break
		}
		r, _ := ParseReceipt(s.Receipts[i])
		rr, err := r.VerifyInclusion(s.Registered(), service, leaf)
		if err != nil {
			continue
		}
		for _, c := range rr.Checks {
			c.Name = fmt.Sprintf("receipt[%d].%s", i, c.Name)
			res.Checks = append(res.Checks, c)
		}
		verified++
	}
	if verified == 0 {
		return res.fail("receipts", fmt.Errorf("%w: none of the %d receipts is signed by a given service key", ErrKeyNotFound, len(s.Receipts)))
	}
	return res, nil
}

// VerifyDetachedReceipt verifies a receipt given apart from its statement:
// with issuer keys, the statement's signature first (opts apply to that
// check), then the receipt's inclusion proof and signature under the service
// keys (`trustfabric receipt verify --statement --receipt`).
func VerifyDetachedReceipt(statement, receipt []byte, service keys.Set, leaf LeafConvention, issuer keys.Set, opts ...VerifyOption) (*Result, error) {
	res := &Result{}
	if issuer != nil {
		s, err := ParseStatement(statement)
		if err != nil {
			return res.fail("statement.parse", err)
		}
		sr, err := s.Verify(issuer, opts...)
		res.Checks = append(res.Checks, sr.Checks...)
		if err != nil {
			return res, err
		}
	}
	r, err := ParseReceipt(receipt)
	if err != nil {
		return res.fail("receipt.parse", err)
	}
	rr, err := r.VerifyInclusion(statement, service, leaf)
	res.Checks = append(res.Checks, rr.Checks...)
	return res, err
}
