package attest

import (
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/trustfabric/trustfabric/pkg/oci"
	"github.com/trustfabric/trustfabric/pkg/provenance"
	"github.com/trustfabric/trustfabric/pkg/scitt"
)

// NewAttachment builds the OCI attachment of a transparent statement and its
// preimage, for `trustfabric attach` and for callers that register and
// attach in separate steps. It checks that the statement has a receipt and
// covers the preimage, and reads the listing annotations (issuer, subject,
// entry id, predicate type, receipt issuers, registration time) out of
// them. The preimage is checked against the content type the statement
// declares (label 259 of a hash envelope, label 3 of an embedded payload):
// an in-toto statement strictly, a JSON type as JSON, anything else by its
// digest only; the preimage layer gets that media type. Errors wrap
// ErrInput.
func NewAttachment(statement, preimage []byte) (oci.Attachment, error) {
	s, err := scitt.ParseStatement(statement)
	if err != nil {
		return oci.Attachment{}, fmt.Errorf("%w: statement: %w", ErrInput, err)
	}
	if len(s.Receipts) == 0 {
		return oci.Attachment{}, fmt.Errorf("%w: the statement has no receipt: register it with a transparency service first", ErrInput)
	}
	if s.Payload != nil {
		if err := s.CheckPreimage(preimage); err != nil {
			return oci.Attachment{}, fmt.Errorf("%w: the preimage is not the payload the statement signs: %w", ErrInput, err)
		}
	} else if s.IsHashEnvelope() {
		return oci.Attachment{}, errors.Join(ErrInput, errors.New("the statement's digest payload is detached"))
	}
	p, err := provenance.ParsePayload(DeclaredContentType(s), preimage)
	if err != nil {
		return oci.Attachment{}, fmt.Errorf("%w: preimage: %w", ErrInput, err)
	}
	entry := s.EntryHash()
	ann := oci.Annotations{Issuer: s.Issuer, Subject: s.Subject, EntryID: hex.EncodeToString(entry[:]),
		PredicateType: p.PredicateType(), ContentType: p.MediaType, Created: s.IssuedAt}
	for i, raw := range s.Receipts {
		r, err := scitt.ParseReceipt(raw)
		if err != nil {
			return oci.Attachment{}, fmt.Errorf("%w: receipt %d: %w", ErrInput, i, err)
		}
		if r.Issuer != "" {
			ann.TS = append(ann.TS, r.Issuer)
		}
		if i == 0 && !r.IssuedAt.IsZero() {
			ann.Created = r.IssuedAt // registration time
		}
	}
	if ann.Created.IsZero() {
		ann.Created = time.Now()
	}
	return oci.Attachment{Statement: statement, Preimage: preimage, PreimageMediaType: p.MediaType,
		PreimageTitle: PreimageTitle(p.MediaType), Annotations: ann}, nil
}

// DeclaredContentType is the content type a statement declares for its
// payload: label 259 of a hash envelope, label 3 of an embedded payload.
func DeclaredContentType(s *scitt.Statement) string {
	if s.IsHashEnvelope() {
		return s.PreimageContentType
	}
	return s.ContentType
}

// PreimageTitle is the file name of a preimage layer of a media type
// (preimage.intoto.json, preimage.cdx.json, preimage.txt, …).
func PreimageTitle(mediaType string) string { return "preimage" + provenance.FileExtension(mediaType) }
