package attest

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/trustfabric/trustfabric/pkg/provenance"
)

var testSubject = provenance.Subject{Name: "registry.example/acme/widgets",
	Digest: map[string]string{"sha256": "4f53cda18c2baa0c0354bb5f9a3ecbe5ed12ab4d8e11ba873c2f11161202b945"}}

func TestParsePredicate(t *testing.T) {
	file := func(name string) string {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	other := strings.ReplaceAll(file("statement.json"), "4f53", "0000")
	for _, tc := range []struct {
		name, raw, predicateType string
		wantType, wantMediaType  string
		wantErr                  error
	}{
		{name: "slsa bare", raw: file("slsa-predicate.json"), wantType: provenance.PredicateSLSAv1, wantMediaType: provenance.MediaType},
		{name: "bare with type", raw: file("slsa-predicate.json"), predicateType: "https://example.com/x", wantType: "https://example.com/x", wantMediaType: provenance.MediaType},
		{name: "statement", raw: file("statement.json"), wantType: "https://example.com/p/v1", wantMediaType: provenance.MediaType},
		{name: "statement ignores type", raw: file("statement.json"), predicateType: "https://ignored.example", wantType: "https://example.com/p/v1", wantMediaType: provenance.MediaType},
		{name: "dsse", raw: file("dsse.json"), wantType: "https://example.com/p", wantMediaType: provenance.DSSEMediaType},
		{name: "other subject", raw: other, wantErr: provenance.ErrSubjectNotCovered},
		{name: "bare of unknown type", raw: `{"scanner":{}}`, wantErr: ErrInput},
		{name: "not json", raw: `predicate: yes`, wantErr: ErrInput},
		{name: "array", raw: `[{"_type":"x"}]`, wantErr: ErrInput},
		{name: "malformed statement", raw: `{"_type":"https://in-toto.io/Statement/v1","subject":[]}`, wantErr: provenance.ErrMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, err := parsePredicate([]byte(tc.raw), tc.name, tc.predicateType, testSubject)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err = %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if st.PredicateType != tc.wantType || st.MediaType != tc.wantMediaType || !st.Covers(testSubject) {
				t.Errorf("type %s media type %s subjects %+v", st.PredicateType, st.MediaType, st.Subjects)
			}
		})
	}
}

// FuzzParsePredicate: whatever the file holds, parsing never panics, and an
// accepted preimage is an in-toto statement that covers the image.
func FuzzParsePredicate(f *testing.F) {
	for _, n := range []string{"slsa-predicate.json", "statement.json", "dsse.json"} {
		b, err := os.ReadFile(filepath.Join("testdata", n))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, "")
		f.Add(b, "https://example.com/t")
	}
	f.Add([]byte(`{"a":[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]}`), "https://example.com/t")
	f.Fuzz(func(t *testing.T, raw []byte, predicateType string) {
		st, err := parsePredicate(raw, "fuzz", predicateType, testSubject)
		if err != nil {
			return
		}
		again, err := provenance.ParseStatement(st.Raw)
		if err != nil {
			t.Fatalf("accepted preimage does not parse: %v", err)
		}
		if !again.Covers(testSubject) {
			t.Fatalf("accepted preimage does not cover the image")
		}
	})
}
