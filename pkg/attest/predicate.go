package attest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"

	"github.com/trustfabric/trustfabric/pkg/provenance"
)

// loadPredicate reads a user-supplied file: an in-toto statement or DSSE
// envelope is used byte for byte (it must list subject); a bare predicate
// (a JSON object without _type or payloadType) is wrapped in an in-toto
// Statement v1 about subject.
func loadPredicate(path, predicateType string, subject provenance.Subject) (*provenance.Statement, error) {
	raw, err := readLimited(path, provenance.MaxStatementSize)
	if err != nil {
		return nil, err
	}
	return parsePredicate(raw, path, predicateType, subject)
}

// parsePredicate is loadPredicate on the file's bytes; name is for messages.
func parsePredicate(raw []byte, path, predicateType string, subject provenance.Subject) (*provenance.Statement, error) {
	var probe map[string]json.RawMessage
	if err := json.Unmarshal(raw, &probe); err != nil {
		return nil, fmt.Errorf("%w: predicate file %s is not a JSON object: %w", ErrInput, path, err)
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
		return st, nil
	}
	if predicateType == "" {
		_, bd := probe["buildDefinition"]
		_, rd := probe["runDetails"]
		if !bd || !rd {
			return nil, fmt.Errorf("%w: predicate file %s is a bare predicate of unknown type: give its predicate type (--predicate-type URI) or a whole in-toto statement", ErrInput, path)
		}
		predicateType = provenance.PredicateSLSAv1
	}
	return wrapPredicate(raw, predicateType, subject)
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
