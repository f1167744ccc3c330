package attest

import (
	"bytes"
	"crypto"
	"encoding/json"
	"fmt"
	"io"
	"os"

	"github.com/trustfabric/trustfabric/pkg/keys"
	"github.com/trustfabric/trustfabric/pkg/provenance"
)

// predicateInput is what the user gave for the payload to sign.
type predicateInput struct {
	path          string
	predicateType string   // of a bare predicate
	contentType   string   // declared content type; "" or in-toto: an in-toto statement
	keys          []string // key files a DSSE envelope must verify with
}

// loadPredicate reads a user-supplied file. With a content type that is not
// in-toto (an SBOM, VEX, plain text) the file is the payload as it is,
// checked against that type (JSON types as JSON). Otherwise an in-toto
// statement is used byte for byte (it must list subject), a DSSE envelope
// too once one of its signatures verifies with a key of in.keys (it is
// refused without keys: never carried unchecked), and a bare predicate (a
// JSON object without _type or payloadType) is wrapped in an in-toto
// Statement v1 about subject.
func loadPredicate(in predicateInput, subject provenance.Subject) (*provenance.Payload, error) {
	raw, err := readLimited(in.path, provenance.MaxStatementSize)
	if err != nil {
		return nil, err
	}
	return parsePredicate(raw, in, subject)
}

// parsePredicate is loadPredicate on the file's bytes.
func parsePredicate(raw []byte, in predicateInput, subject provenance.Subject) (*provenance.Payload, error) {
	path := in.path
	if in.contentType != "" {
		mt, err := provenance.NormalizeContentType(in.contentType)
		if err != nil {
			return nil, fmt.Errorf("%w: --content-type: %w", ErrInput, err)
		}
		if provenance.KindOf(mt) != provenance.KindInToto {
			if in.predicateType != "" {
				return nil, fmt.Errorf("%w: --predicate-type applies to in-toto statements; a %s payload is signed as it is", ErrInput, mt)
			}
			p, err := provenance.ParsePayload(in.contentType, raw)
			if err != nil {
				return nil, fmt.Errorf("%w: predicate file %s: %w", ErrInput, path, err)
			}
			return p, nil
		}
	}
	var probe map[string]json.RawMessage
	if err := json.Unmarshal(raw, &probe); err != nil {
		return nil, fmt.Errorf("%w: predicate file %s is not a JSON object (give --content-type for a payload that is not in-toto): %w", ErrInput, path, err)
	}
	_, isStatement := probe["_type"]
	_, isEnvelope := probe["payloadType"]
	if isStatement || isEnvelope {
		st, err := provenance.ParseStatement(raw)
		if err != nil {
			return nil, fmt.Errorf("%w: predicate file %s: %w", ErrInput, path, err)
		}
		if !st.Covers(subject) {
			return nil, fmt.Errorf("%w: predicate file %s: %w: %s@sha256:%s", ErrInput, path, provenance.ErrSubjectNotCovered,
				subject.Name, subject.Digest["sha256"])
		}
		if isEnvelope {
			if err := verifyEnvelope(raw, in); err != nil {
				return nil, err
			}
		}
		return &provenance.Payload{Raw: raw, MediaType: st.MediaType, Kind: provenance.KindInToto, Statement: st}, nil
	}
	predicateType := in.predicateType
	if predicateType == "" {
		_, bd := probe["buildDefinition"]
		_, rd := probe["runDetails"]
		if !bd || !rd {
			return nil, fmt.Errorf("%w: predicate file %s is a bare predicate of unknown type: give its predicate type (--predicate-type URI), a whole in-toto statement, or --content-type to sign it as it is", ErrInput, path)
		}
		predicateType = provenance.PredicateSLSAv1
	}
	st, err := wrapPredicate(raw, predicateType, subject)
	if err != nil {
		return nil, err
	}
	return &provenance.Payload{Raw: st.Raw, MediaType: st.MediaType, Kind: provenance.KindInToto, Statement: st}, nil
}

// verifyEnvelope checks a user-supplied DSSE envelope's signature against the
// keys given for it; without keys the envelope is refused.
func verifyEnvelope(raw []byte, in predicateInput) error {
	if len(in.keys) == 0 {
		return fmt.Errorf("%w: predicate file %s is a DSSE envelope: give the key its signature verifies with (--predicate-key FILE), or the bare in-toto statement; a signed envelope is never carried unchecked", ErrInput, in.path)
	}
	var pubs []crypto.PublicKey
	for _, f := range in.keys {
		ks, err := keys.LoadPublic(f)
		if err != nil {
			return fmt.Errorf("%w: --predicate-key %s: %w", ErrInput, f, err)
		}
		for _, k := range ks {
			pubs = append(pubs, k.Key)
		}
	}
	if err := provenance.VerifyDSSE(raw, pubs); err != nil {
		return fmt.Errorf("%w: predicate file %s: %w", ErrInput, in.path, err)
	}
	return nil
}

// wrapPredicate builds the in-toto Statement v1 {_type, subject, predicateType,
// predicate} with the predicate's bytes compacted but otherwise unchanged.
func wrapPredicate(predicate []byte, predicateType string, subject provenance.Subject) (*provenance.Statement, error) {
	var buf bytes.Buffer
	if err := json.Compact(&buf, predicate); err != nil {
		return nil, fmt.Errorf("%w: predicate: %w", ErrInput, err)
	}
	type subj struct {
		Name   string            `json:"name"`
		Digest map[string]string `json:"digest"`
	}
	st := struct {
		Type          string          `json:"_type"`
		Subject       []subj          `json:"subject"`
		PredicateType string          `json:"predicateType"`
		Predicate     json.RawMessage `json:"predicate"`
	}{provenance.StatementType, []subj{{subject.Name, subject.Digest}}, predicateType, buf.Bytes()}
	raw, err := json.Marshal(st)
	if err != nil {
		return nil, err
	}
	out, err := provenance.ParseStatement(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: wrapped predicate: %w", ErrInput, err)
	}
	return out, nil
}

// readLimited reads at most limit bytes of path, failing on larger files.
func readLimited(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInput, err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("%w: read %s: %w", ErrInput, path, err)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%w: %s is larger than %d bytes: %w", ErrInput, path, limit, provenance.ErrTooLarge)
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return nil, fmt.Errorf("%w: %s is empty", ErrInput, path)
	}
	return b, nil
}
