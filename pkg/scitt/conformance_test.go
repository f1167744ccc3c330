package scitt

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/trustfabric/trustfabric/pkg/keys"
)

//go:generate go run ../../devtools/genvectors -out ../../testdata/trustfabric-v1

var sentinels = map[string]error{
	"ErrMalformed":            ErrMalformed,
	"ErrUnsupportedAlgorithm": ErrUnsupportedAlgorithm,
	"ErrUnsupportedVDS":       ErrUnsupportedVDS,
	"ErrBadSignature":         ErrBadSignature,
	"ErrKeyNotFound":          ErrKeyNotFound,
	"ErrProofMismatch":        ErrProofMismatch,
	"ErrPayloadMismatch":      ErrPayloadMismatch,
	"ErrHeaderPlacement":      ErrHeaderPlacement,
	"ErrMissingClaims":        ErrMissingClaims,
	"ErrCriticalHeader":       ErrCriticalHeader,
}

// verifyVector runs the full chain on one of our vectors and returns the
// name of the check that failed (or "") and its error.
func verifyVector(dir string) (string, error) {
	read := func(f string) []byte { b, _ := os.ReadFile(filepath.Join(dir, f)); return b }
	issuer, err := keys.LoadPublic(filepath.Join(dir, "issuer-key.jwk"))
	if err != nil {
		return "load", err
	}
	logKey, err := keys.LoadPublic(filepath.Join(dir, "log-key.jwk"))
	if err != nil {
		return "load", err
	}
	stmt := read("statement.cose")
	s, err := ParseStatement(stmt)
	if err != nil {
		return "statement.parse", err
	}
	if _, err := s.Verify(issuer, WithPreimage(read("payload.bin"))); err != nil {
		var ce *CheckError
		errors.As(err, &ce)
		return ce.Check, err
	}
	r, err := ParseReceipt(read("receipt.cose"))
	if err != nil {
		return "receipt.parse", err
	}
	if _, err := r.VerifyInclusion(stmt, logKey, LeafIETF); err != nil {
		var ce *CheckError
		errors.As(err, &ce)
		return ce.Check, err
	}
	return "", nil
}

// TestOwnVectors checks that the positive vector verifies and each negative
// vector fails at its one named check with its one named sentinel.
func TestOwnVectors(t *testing.T) {
	root := "../../testdata/trustfabric-v1"
	entries, err := os.ReadDir(root)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) < 15 {
		t.Fatalf("found %d vectors, want 15", len(entries))
	}
	for _, e := range entries {
		t.Run(e.Name(), func(t *testing.T) {
			dir := filepath.Join(root, e.Name())
			var exp struct{ Verdict, Check, Error string }
			b, err := os.ReadFile(filepath.Join(dir, "expected.json"))
			if err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(b, &exp); err != nil {
				t.Fatal(err)
			}
			check, err := verifyVector(dir)
			if exp.Verdict == "valid" {
				if err != nil {
					t.Fatalf("want valid, got %s: %v", check, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("want failure at %s (%s), got valid", exp.Check, exp.Error)
			}
			if check != exp.Check {
				t.Errorf("failed at %s (%v), want %s", check, err, exp.Check)
			}
			want, ok := sentinels[exp.Error]
			if !ok {
				t.Fatalf("unknown sentinel %s", exp.Error)
			}
			if !errors.Is(err, want) {
				t.Errorf("error %v does not wrap %s", err, exp.Error)
			}
			// Exactly one reason: no other sentinel but the expected one,
			// except ErrBadSignature, which proof mismatches also carry.
			for name, s := range sentinels {
				if name != exp.Error && name != "ErrBadSignature" && errors.Is(err, s) {
					t.Errorf("error %v also wraps %s", err, name)
				}
			}
		})
	}
}
