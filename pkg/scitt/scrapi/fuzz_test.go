package scrapi

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func seeds(f *testing.F, glob string) {
	paths, _ := filepath.Glob(filepath.Join("testdata", glob))
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
}

// FuzzParseProblem checks that any body either fails cleanly or round-trips.
func FuzzParseProblem(f *testing.F) {
	seeds(f, "problem-*.cbor")
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := ParseProblem(b)
		if err != nil {
			return
		}
		enc, err := p.MarshalCBOR()
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		q, err := ParseProblem(enc)
		if err != nil || *q != *p {
			t.Fatalf("round trip: %+v → %+v, %v", p, q, err)
		}
	})
}

// FuzzParseOperation checks the legacy 202 operation body parser.
func FuzzParseOperation(f *testing.F) {
	seeds(f, "operation-*")
	f.Fuzz(func(t *testing.T, b []byte) {
		op, err := parseOperation(b)
		if err == nil && op.OperationID == "" && op.EntryID == "" {
			t.Fatal("accepted an operation without ids")
		}
	})
}

// FuzzParseConfiguration: any configuration body fails cleanly or gives
// text issuer and leaf convention.
func FuzzParseConfiguration(f *testing.F) {
	seeds(f, "config-*")
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, ct := range []string{MediaTypeCBOR, "application/json"} {
			if _, err := ParseConfiguration(b, ct); err != nil && !errors.Is(err, ErrBadConfiguration) {
				t.Fatalf("%s: error %v does not wrap ErrBadConfiguration", ct, err)
			}
		}
	})
}
