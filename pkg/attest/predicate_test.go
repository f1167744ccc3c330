package attest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/trustfabric/trustfabric/pkg/provenance"
)

// signedEnvelope wraps statement in a DSSE envelope signed (ECDSA P-256,
// ASN.1, as go-securesystemslib signs) with a new key, and writes the
// public key as PEM to dir/name.
func signedEnvelope(t testing.TB, statement []byte, dir, name string) (envelope []byte, keyFile string) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.Sum256(provenance.PAE(provenance.MediaType, statement))
	sig, err := ecdsa.SignASN1(rand.Reader, k, h[:])
	if err != nil {
		t.Fatal(err)
	}
	env, err := json.Marshal(map[string]any{"payloadType": provenance.MediaType,
		"payload":    base64.StdEncoding.EncodeToString(statement),
		"signatures": []any{map[string]string{"keyid": "k1", "sig": base64.StdEncoding.EncodeToString(sig)}}})
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	keyFile = filepath.Join(dir, name)
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return env, keyFile
}

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
	dir := t.TempDir()
	env, key := signedEnvelope(t, []byte(file("statement.json")), dir, "dsse.pem")
	_, otherKey := signedEnvelope(t, []byte(file("statement.json")), dir, "other.pem")
	for _, tc := range []struct {
		name, raw, predicateType string
		contentType              string
		keys                     []string
		wantType, wantMediaType  string
		wantErr                  error
	}{
		{name: "signed dsse", raw: string(env), keys: []string{key}, wantType: "https://example.com/p/v1", wantMediaType: provenance.DSSEMediaType},
		{name: "dsse without key", raw: string(env), wantErr: ErrInput},
		{name: "dsse with another key", raw: string(env), keys: []string{otherKey}, wantErr: provenance.ErrDSSESignature},
		{name: "dsse with a fake signature", raw: file("dsse.json"), keys: []string{key}, wantErr: provenance.ErrDSSESignature},
		{name: "cyclonedx", raw: `{"bomFormat":"CycloneDX","specVersion":"1.6"}`, contentType: provenance.ContentTypeCycloneDX, wantMediaType: provenance.ContentTypeCycloneDX},
		{name: "cyclonedx not json", raw: `bomFormat: CycloneDX`, contentType: provenance.ContentTypeCycloneDX, wantErr: provenance.ErrContentType},
		{name: "text", raw: "hello, world\n", contentType: "text/plain; charset=utf-8", wantMediaType: provenance.ContentTypeText},
		{name: "text with predicate type", raw: "hello", contentType: "text/plain", predicateType: "https://example.com/x", wantErr: ErrInput},
		{name: "bad content type", raw: "hello", contentType: "plain", wantErr: provenance.ErrContentType},
		{name: "in-toto content type", raw: file("statement.json"), contentType: provenance.MediaType, wantType: "https://example.com/p/v1", wantMediaType: provenance.MediaType},
		{name: "slsa bare", raw: file("slsa-predicate.json"), wantType: provenance.PredicateSLSAv1, wantMediaType: provenance.MediaType},
		{name: "bare with type", raw: file("slsa-predicate.json"), predicateType: "https://example.com/x", wantType: "https://example.com/x", wantMediaType: provenance.MediaType},
		{name: "statement", raw: file("statement.json"), wantType: "https://example.com/p/v1", wantMediaType: provenance.MediaType},
		{name: "statement ignores type", raw: file("statement.json"), predicateType: "https://ignored.example", wantType: "https://example.com/p/v1", wantMediaType: provenance.MediaType},
		{name: "other subject", raw: other, wantErr: provenance.ErrSubjectNotCovered},
		{name: "bare of unknown type", raw: `{"scanner":{}}`, wantErr: ErrInput},
		{name: "not json", raw: `predicate: yes`, wantErr: ErrInput},
		{name: "array", raw: `[{"_type":"x"}]`, wantErr: ErrInput},
		{name: "malformed statement", raw: `{"_type":"https://in-toto.io/Statement/v1","subject":[]}`, wantErr: provenance.ErrMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, err := parsePredicate([]byte(tc.raw), predicateInput{path: tc.name, predicateType: tc.predicateType,
				contentType: tc.contentType, keys: tc.keys}, testSubject)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err = %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if st.PredicateType() != tc.wantType || st.MediaType != tc.wantMediaType || string(st.Raw) != tc.raw && tc.contentType != "" {
				t.Errorf("type %s media type %s", st.PredicateType(), st.MediaType)
			}
			if st.Kind == provenance.KindInToto && !st.Statement.Covers(testSubject) {
				t.Errorf("subjects %+v", st.Statement.Subjects)
			}
		})
	}
}

// FuzzParsePredicate: whatever the file holds, parsing never panics, and an
// accepted preimage matches its content type, and an in-toto one covers the
// image.
func FuzzParsePredicate(f *testing.F) {
	for _, n := range []string{"slsa-predicate.json", "statement.json", "dsse.json"} {
		b, err := os.ReadFile(filepath.Join("testdata", n))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, "", "")
		f.Add(b, "https://example.com/t", "")
		f.Add(b, "", provenance.ContentTypeCycloneDX)
	}
	f.Add([]byte(`{"a":[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]}`), "https://example.com/t", "")
	f.Add([]byte("text"), "", "text/plain")
	f.Fuzz(func(t *testing.T, raw []byte, predicateType, contentType string) {
		st, err := parsePredicate(raw, predicateInput{path: "fuzz", predicateType: predicateType, contentType: contentType}, testSubject)
		if err != nil {
			return
		}
		if st.Kind != provenance.KindInToto {
			if _, err := provenance.ParsePayload(st.MediaType, st.Raw); err != nil {
				t.Fatalf("accepted payload does not match its type: %v", err)
			}
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
