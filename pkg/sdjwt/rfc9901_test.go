package sdjwt

import (
	"bufio"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/trustfabric/trustfabric/pkg/keys"
)

// The vectors in testdata/rfc9901 are RFC 9901 §5 (issuance and
// presentation) with the issuer key of the RFC's examples.

func readVector(t testing.TB, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "rfc9901", name))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

func rfcIssuer(t testing.TB) keys.Set {
	t.Helper()
	ks, err := keys.ParsePublic([]byte(readVector(t, "issuer.jwk")))
	if err != nil {
		t.Fatal(err)
	}
	return ks
}

// TestRFC9901Disclosures: each Disclosure of §5.1 decodes to the contents
// and hashes to the digest the RFC prints.
func TestRFC9901Disclosures(t *testing.T) {
	f, err := os.Open(filepath.Join("testdata", "rfc9901", "disclosures.txt"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	n := 0
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") || line == "" {
			continue
		}
		fields := strings.SplitN(line, "\t", 3)
		d, err := ParseDisclosure(fields[1])
		if err != nil {
			t.Fatalf("%s: %v", fields[1], err)
		}
		if got := d.Digest(); got != fields[0] {
			t.Errorf("digest of %s = %s, want %s", fields[1], got, fields[0])
		}
		var want []any
		if err := json.Unmarshal([]byte(fields[2]), &want); err != nil {
			t.Fatal(err)
		}
		var value any
		if err := json.Unmarshal(d.Value(), &value); err != nil {
			t.Fatal(err)
		}
		got := []any{d.Salt}
		if !d.IsElement {
			got = append(got, d.Name)
		}
		got = append(got, value)
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("contents of %s (-want +got):\n%s", fields[1], diff)
		}
		n++
	}
	if n != 10 {
		t.Fatalf("%d disclosures in the vector file, want the RFC's 10", n)
	}
}

// TestRFC9901Issuance: the §5.1 SD-JWT verifies with the RFC's issuer key
// and every claim of the input claim set is disclosed.
func TestRFC9901Issuance(t *testing.T) {
	sd, err := Parse(readVector(t, "issuance.txt"))
	if err != nil {
		t.Fatal(err)
	}
	res, err := Verify(sd, rfcIssuer(t), WithTypes("example+sd-jwt"), WithoutKeyBindingUnsafe(), WithClock(func() time.Time { return time.Unix(1748537244, 0) }))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []string{"given_name", "family_name", "email", "phone_number", "phone_number_verified", "address", "birthdate", "updated_at"} {
		if _, ok := res.Claims[c]; !ok {
			t.Errorf("claim %s missing from the processed payload", c)
		}
	}
	if got := res.Claims["nationalities"]; !cmp.Equal(got, []any{"US", "DE"}) {
		t.Errorf("nationalities = %v", got)
	}
	if len(res.Disclosed) != 10 || res.Disclosed[8] != "nationalities.0" {
		t.Errorf("disclosed paths %v", res.Disclosed)
	}
}

// TestRFC9901Presentation: the §5.2 SD-JWT+KB verifies, with its KB-JWT
// bound to the cnf key, its sd_hash, aud and nonce, and yields exactly the
// Processed SD-JWT Payload the RFC prints.
func TestRFC9901Presentation(t *testing.T) {
	sd, err := Parse(readVector(t, "presentation.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if got := sd.SDHash(); got != "0_Af-2B-EhLWX5ydh_w2xzwmO6iM66B_2QCEanI4fUY" {
		t.Errorf("sd_hash %s", got)
	}
	at := func() time.Time { return time.Unix(1748537244+10, 0) }
	res, err := Verify(sd, rfcIssuer(t), WithTypes("example+sd-jwt"), WithAudience("https://verifier.example.org"), WithNonce("1234567890"), WithClock(at))
	if err != nil {
		t.Fatal(err)
	}
	var want map[string]any
	if err := decodeJSON([]byte(readVector(t, "presentation-processed.json")), &want); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, res.Claims); diff != "" {
		t.Errorf("processed payload (-RFC +got):\n%s", diff)
	}
	if !res.KeyBound || res.Audience != "https://verifier.example.org" {
		t.Errorf("key binding %+v", res)
	}

	// The RFC's own presentation, checked against the wrong expectations.
	for _, c := range []struct {
		name  string
		opts  []VerifyOption
		check string
		err   error
	}{
		{"wrong nonce", []VerifyOption{WithNonce("other")}, CheckNonce, ErrNonce},
		{"wrong audience", []VerifyOption{WithAudience("https://evil.example")}, CheckAudience, ErrAudience},
		{"stale key binding", []VerifyOption{WithClock(func() time.Time { return time.Unix(1748537244, 0).Add(time.Hour) })}, CheckTime, ErrExpired},
		{"credential expired", []VerifyOption{WithClock(func() time.Time { return time.Unix(1883000000, 0).Add(time.Hour) })}, CheckTime, ErrExpired},
		{"other typ", []VerifyOption{WithTypes(TypeVC)}, CheckType, ErrType},
	} {
		t.Run(c.name, func(t *testing.T) {
			opts := append([]VerifyOption{WithTypes("example+sd-jwt"), WithClock(at)}, c.opts...)
			_, err := Verify(sd, rfcIssuer(t), opts...)
			assertCheck(t, err, c.check, c.err)
		})
	}
}

func assertCheck(t *testing.T, err error, check string, sentinel error) {
	t.Helper()
	var ve *VerifyError
	if !errors.As(err, &ve) {
		t.Fatalf("error %v is not a *VerifyError", err)
	}
	if ve.Check != check || !errors.Is(err, sentinel) {
		t.Fatalf("failed check %q (%v), want %q wrapping %v", ve.Check, err, check, sentinel)
	}
}
