package sdcwt

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/veraison/go-cose"

	"github.com/trustfabric/trustfabric/pkg/keys"
)

var update = flag.Bool("update", false, "rewrite testdata/vectors (a new issuer key, new signatures)")

// vectorTime is the time the vectors are checked at (their iat + 1 min).
var vectorTime = time.Unix(1_780_000_060, 0)

type vectorFile struct {
	// Disclosures are the SD-CWT's disclosures (hex of the bstr content)
	// with the digest each must have and the claim path it discloses.
	Disclosures []struct {
		CBOR   string `json:"cbor"`
		Digest string `json:"digest"`
		Path   string `json:"path"`
	} `json:"disclosures"`
	// Disclosed and Claims are what a verifier sees of kbt.cbor.
	Disclosed []string       `json:"disclosed"`
	Claims    map[string]any `json:"claims"`
}

// TestOwnVectors checks our own SD-CWT vectors (testdata/vectors, written
// by -update with fixed salts): every disclosure hashes to its recorded
// digest and resolves to its recorded path in the issued SD-CWT, and the
// SD-KBT verifies with the recorded issuer key to exactly the recorded
// claims. They pin the wire format against accidental change.
func TestOwnVectors(t *testing.T) {
	dir := filepath.Join("testdata", "vectors")
	if *update {
		writeVectors(t, dir)
	}
	read := func(n string) []byte {
		b, err := os.ReadFile(filepath.Join(dir, n))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	var want vectorFile
	if err := json.Unmarshal(read("vectors.json"), &want); err != nil {
		t.Fatal(err)
	}
	s, err := Parse(read("issued.cbor"))
	if err != nil {
		t.Fatal(err)
	}
	paths, _, err := s.Paths()
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Disclosures) != len(want.Disclosures) {
		t.Fatalf("%d disclosures, want %d", len(s.Disclosures), len(want.Disclosures))
	}
	for i, d := range s.Disclosures {
		w := want.Disclosures[i]
		if got := hex.EncodeToString(d.Raw); got != w.CBOR {
			t.Errorf("disclosure %d: %s, want %s", i, got, w.CBOR)
		}
		if got := hex.EncodeToString(d.Digest()); got != w.Digest {
			t.Errorf("disclosure %d digest %s, want %s", i, got, w.Digest)
		}
		if paths[i] != w.Path {
			t.Errorf("disclosure %d path %q, want %q", i, paths[i], w.Path)
		}
	}
	ks, err := keys.ParsePublic(read("issuer.pub.jwk"))
	if err != nil {
		t.Fatal(err)
	}
	res, err := Verify(read("kbt.cbor"), ks, WithClock(func() time.Time { return vectorTime }), WithAudience("https://verifier.example"), WithNonce("vector-nonce"))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.Disclosed, want.Disclosed) {
		t.Errorf("disclosed %v, want %v", res.Disclosed, want.Disclosed)
	}
	got, _ := json.Marshal(res.Claims)
	exp, _ := json.Marshal(want.Claims)
	if !bytes.Equal(got, exp) {
		t.Errorf("claims\n%s\nwant\n%s", got, exp)
	}
}

// countingReader yields 0, 1, 2, … : fixed salts.
type countingReader struct{ n byte }

func (r *countingReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = r.n
		r.n++
	}
	return len(p), nil
}

func writeVectors(t *testing.T, dir string) {
	issuer, _ := keys.Generate(cose.AlgorithmES256)
	holder, _ := keys.Generate(cose.AlgorithmES256)
	iat := vectorTime.Add(-time.Minute).Unix()
	claims := map[any]any{
		ClaimIss: "https://issuer.example", ClaimIat: iat, ClaimExp: iat + 3600, ClaimVct: "https://trustfabric.dev/credentials/build/v1",
		"artifact_digest":   "sha256:" + hex.EncodeToString(bytes.Repeat([]byte{0xab}, 32)),
		"builder_id":        SD{"https://github.com/acme/widgets/.github/workflows/release.yml@refs/heads/main"},
		"source_ref":        SD{"refs/heads/main"},
		"source_repository": SD{"https://github.com/acme/widgets"},
		"log_index":         SD{int64(7)},
		"policy":            map[string]any{"name": "prod", "sha256": "ff"},
		"results":           []any{SD{map[string]any{"predicate_type": "https://in-toto.io/attestation/test-result/v0.1", "result": "PASSED"}}, SD{map[string]any{"predicate_type": "https://example.com/scan", "result": "WARNED"}}},
	}
	s, err := Issue(issuer, holder.Public(), claims, WithDecoys(2), WithRand(&countingReader{}))
	if err != nil {
		t.Fatal(err)
	}
	sel, err := s.Select([]string{"source_ref", "results.0"})
	if err != nil {
		t.Fatal(err)
	}
	kbt, err := sel.Present(holder, Presentation{Audience: "https://verifier.example", Nonce: "vector-nonce", IssuedAt: vectorTime})
	if err != nil {
		t.Fatal(err)
	}
	paths, _, err := s.Paths()
	if err != nil {
		t.Fatal(err)
	}
	var v vectorFile
	for i, d := range s.Disclosures {
		v.Disclosures = append(v.Disclosures, struct {
			CBOR   string `json:"cbor"`
			Digest string `json:"digest"`
			Path   string `json:"path"`
		}{hex.EncodeToString(d.Raw), hex.EncodeToString(d.Digest()), paths[i]})
	}
	res, err := Verify(kbt, keys.Set{issuer.Public()}, WithClock(func() time.Time { return vectorTime }))
	if err != nil {
		t.Fatal(err)
	}
	v.Disclosed, v.Claims = res.Disclosed, res.Claims
	// Through JSON, as the test reads it back.
	vb, _ := json.MarshalIndent(v, "", "  ")
	pub, err := issuer.Public().MarshalJWK()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, b := range map[string][]byte{"issued.cbor": s.Bytes(), "kbt.cbor": kbt, "vectors.json": append(vb, '\n'), "issuer.pub.jwk": pub} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
