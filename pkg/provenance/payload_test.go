package provenance

import (
	"bytes"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParsePayload(t *testing.T) {
	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join("testdata", "payloads", name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	deep := []byte(strings.Repeat("[", MaxDepth+1) + strings.Repeat("]", MaxDepth+1))
	for _, tc := range []struct {
		name, ct string
		b        []byte
		wantMT   string
		wantKind PayloadKind
		wantErr  error
	}{
		{"cyclonedx", "application/vnd.cyclonedx+json", read("sbom.cdx.json"), ContentTypeCycloneDX, KindJSON, nil},
		{"spdx with parameter", "application/spdx+json; charset=utf-8", read("sbom.spdx.json"), ContentTypeSPDX, KindJSON, nil},
		{"text", "text/plain", read("notes.txt"), ContentTypeText, KindOpaque, nil},
		{"coap text", "coap:0", read("notes.txt"), ContentTypeText, KindOpaque, nil},
		{"coap unknown", "coap:9999", []byte{1, 2}, ContentTypeOctets, KindOpaque, nil},
		{"in-toto", MediaType, read("statement.intoto.json"), MediaType, KindInToto, nil},
		{"dsse", DSSEMediaType, read("envelope.dsse.json"), DSSEMediaType, KindInToto, nil},
		{"undeclared in-toto", "", read("statement.intoto.json"), MediaType, KindInToto, nil},
		{"undeclared text", "", read("notes.txt"), ContentTypeOctets, KindOpaque, nil},
		{"text declared in-toto", MediaType, read("notes.txt"), "", 0, ErrMalformed},
		{"in-toto declared dsse", DSSEMediaType, read("statement.intoto.json"), "", 0, ErrContentType},
		{"json with trailing data", "application/json", read("bad-trailing.json"), "", 0, ErrContentType},
		{"json too deep", "application/json", deep, "", 0, ErrContentType},
		{"cyclonedx not json", ContentTypeCycloneDX, read("notes.txt"), "", 0, ErrContentType},
		{"not a media type", "sbom", read("notes.txt"), "", 0, ErrContentType},
		{"too large", "text/plain", make([]byte, MaxStatementSize+1), "", 0, ErrTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := ParsePayload(tc.ct, tc.b)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err = %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if p.MediaType != tc.wantMT || p.Kind != tc.wantKind || !bytes.Equal(p.Raw, tc.b) || (p.Kind == KindInToto) != (p.PredicateType() != "") {
				t.Errorf("payload %s %v %q", p.MediaType, p.Kind, p.PredicateType())
			}
		})
	}
	for mt, want := range map[string]string{MediaType: ".intoto.json", ContentTypeCycloneDX: ".cdx.json", "application/json": ".json",
		"application/vnd.acme+json": ".json", "text/plain": ".txt", "application/octet-stream": ".bin"} {
		if got := FileExtension(mt); got != want {
			t.Errorf("FileExtension(%s) = %s, want %s", mt, got, want)
		}
	}
}

// FuzzParsePayload: no panic; an accepted payload keeps its bytes, and a
// JSON or in-toto one parses again as such.
func FuzzParsePayload(f *testing.F) {
	files, _ := filepath.Glob("testdata/payloads/*")
	for _, p := range files {
		if b, err := os.ReadFile(p); err == nil {
			f.Add("application/json", b)
			f.Add(MediaType, b)
			f.Add("", b)
		}
	}
	f.Add("coap:50", []byte(`{}`))
	f.Fuzz(func(t *testing.T, ct string, b []byte) {
		p, err := ParsePayload(ct, b)
		if err != nil {
			if !errors.Is(err, ErrContentType) && !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrTooLarge) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		if !bytes.Equal(p.Raw, b) || !strings.Contains(p.MediaType, "/") {
			t.Fatalf("payload %+v", p)
		}
		switch p.Kind {
		case KindJSON:
			if !json.Valid(b) {
				t.Fatalf("accepted invalid JSON as %s (%q): %q", p.MediaType, ct, b)
			}
		case KindInToto:
			if _, err := ParseStatement(b); err != nil {
				t.Fatalf("accepted in-toto that does not parse: %v", err)
			}
		}
	})
}

func TestVerifyDSSE(t *testing.T) {
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	other, _, _ := ed25519.GenerateKey(rand.Reader)
	body, err := os.ReadFile("testdata/payloads/statement.intoto.json")
	if err != nil {
		t.Fatal(err)
	}
	sig, _ := priv.Sign(rand.Reader, PAE(MediaType, body), crypto.Hash(0))
	env := func(payloadType string, sig []byte) []byte {
		b, _ := json.Marshal(map[string]any{"payloadType": payloadType, "payload": base64.StdEncoding.EncodeToString(body),
			"signatures": []any{map[string]string{"sig": base64.StdEncoding.EncodeToString(sig)}}})
		return b
	}
	if err := VerifyDSSE(env(MediaType, sig), []crypto.PublicKey{other, pub}); err != nil {
		t.Fatalf("good envelope: %v", err)
	}
	for name, c := range map[string]struct {
		env  []byte
		keys []crypto.PublicKey
		want error
	}{
		"other key":          {env(MediaType, sig), []crypto.PublicKey{other}, ErrDSSESignature},
		"no key":             {env(MediaType, sig), nil, ErrDSSESignature},
		"payload type moved": {env("application/json", sig), []crypto.PublicKey{pub}, ErrDSSESignature},
		"no signatures":      {[]byte(`{"payloadType":"x","payload":"","signatures":[]}`), []crypto.PublicKey{pub}, ErrDSSESignature},
		"not json":           {[]byte(`nope`), []crypto.PublicKey{pub}, ErrMalformed},
	} {
		if err := VerifyDSSE(c.env, c.keys); !errors.Is(err, c.want) {
			t.Errorf("%s: err = %v, want %v", name, err, c.want)
		}
	}
	if got := string(PAE("http://example.com/HelloWorld", []byte("hello world"))); got != "DSSEv1 29 http://example.com/HelloWorld 11 hello world" {
		t.Errorf("PAE = %q (the DSSE spec's example)", got)
	}
}

// FuzzVerifyDSSE: no panic and no acceptance without a key's signature.
func FuzzVerifyDSSE(f *testing.F) {
	for _, n := range []string{"testdata/payloads/envelope.dsse.json", "testdata/statements/bad-dsse-base64.json"} {
		if b, err := os.ReadFile(n); err == nil {
			f.Add(b)
		}
	}
	pub, _, _ := ed25519.GenerateKey(rand.Reader)
	f.Fuzz(func(t *testing.T, b []byte) {
		if err := VerifyDSSE(b, []crypto.PublicKey{pub}); err == nil {
			t.Fatal("an envelope verified with a key nobody signed with")
		}
	})
}
