package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
)

// TestVerifyJSONOutputs parses the --output json of `statement verify`,
// `receipt verify` and `bench register` (docs/cli-json.md): valid and
// invalid outcomes, with the exit code of the text mode.
func TestVerifyJSONOutputs(t *testing.T) {
	dir := t.TempDir()
	p := func(n string) string { return filepath.Join(dir, n) }
	mustRun(t, "key", "generate", "--out", p("issuer.jwk"), "--public-out", p("issuer.pub.jwk"))
	mustRun(t, "key", "generate", "--out", p("other.jwk"), "--public-out", p("other.pub.jwk"))
	writeFile(t, p("prov.json"), `{"_type":"https://in-toto.io/Statement/v1","subject":[],"predicateType":"x","predicate":{}}`)
	mustRun(t, "statement", "sign", "--key", p("issuer.jwk"), "--issuer", "https://ci.example.org", "--subject", "sha256:00",
		"--payload", p("prov.json"), "--out", p("s.cose"))

	type report struct {
		Valid           bool
		Issuer, Subject string
		Checks          []struct {
			Name  string
			OK    bool
			Error string
		}
		Error string
	}
	parse := func(args ...string) (int, report) {
		t.Helper()
		code, out, errOut := tf(t, args...)
		var r report
		if err := json.Unmarshal([]byte(out), &r); err != nil {
			t.Fatalf("%v: exit %d, not JSON: %v\n%s%s", args, code, err, out, errOut)
		}
		return code, r
	}
	hasCheck := func(r report, name string, ok bool) bool {
		for _, c := range r.Checks {
			if c.Name == name && c.OK == ok && (ok == (c.Error == "")) {
				return true
			}
		}
		return false
	}

	code, r := parse("statement", "verify", p("s.cose"), "--key", p("issuer.pub.jwk"), "--payload", p("prov.json"), "-o", "json")
	if code != 0 || !r.Valid || r.Issuer != "https://ci.example.org" || r.Subject != "sha256:00" || r.Error != "" ||
		!hasCheck(r, "statement.signature", true) || !hasCheck(r, "statement.preimage", true) {
		t.Errorf("statement verify: exit %d, %+v", code, r)
	}
	code, r = parse("statement", "verify", p("s.cose"), "--key", p("other.pub.jwk"), "--output", "json")
	if code != exitInvalid || r.Valid || r.Error == "" || !hasCheck(r, "statement.signature", false) {
		t.Errorf("statement verify, wrong key: exit %d, %+v", code, r)
	}
	code, r = parse("statement", "verify", p("prov.json"), "--key", p("issuer.pub.jwk"), "--output", "json")
	if code != exitInvalid || r.Valid || r.Error == "" || len(r.Checks) != 0 {
		t.Errorf("statement verify, not a statement: exit %d, %+v", code, r)
	}

	ts := startServe(t, "--data", p("data"), "--trust-key", p("issuer.pub.jwk"))
	mustRun(t, "register", "--ts", ts, p("s.cose"), "--out", p("t.cose"), "--receipt-out", p("r.cose"))
	code, r = parse("receipt", "verify", p("t.cose"), "--service-key", ts, "--issuer-key", p("issuer.pub.jwk"), "-o", "json")
	if code != 0 || !r.Valid || r.Issuer != "https://ci.example.org" || r.Subject != "sha256:00" ||
		!hasCheck(r, "statement.signature", true) || !hasCheck(r, "receipt[0].receipt.signature", true) {
		t.Errorf("receipt verify: exit %d, %+v", code, r)
	}
	code, r = parse("receipt", "verify", "--statement", p("s.cose"), "--receipt", p("r.cose"), "--service-key", ts, "-o", "json")
	if code != 0 || !r.Valid || len(r.Checks) == 0 {
		t.Errorf("receipt verify --receipt: exit %d, %+v", code, r)
	}
	code, r = parse("receipt", "verify", p("t.cose"), "--service-key", p("other.pub.jwk"), "-o", "json")
	if code != exitInvalid || r.Valid || r.Error == "" {
		t.Errorf("receipt verify, another service's key: exit %d, %+v", code, r)
	}

	code, out, errOut := tf(t, "bench", "register", "--ts", ts, "--key", p("issuer.jwk"), "--count", "6", "--concurrency", "2",
		"--window", "2", "--payload-size", "32", "-o", "json")
	var b struct {
		Mode                                 string
		Count, Concurrency, Window, Verified int
		PayloadSize                          int
		ElapsedMs, RatePerSecond             float64
		LatencyMs                            struct{ P50, P90, P99, Max float64 }
	}
	if err := json.Unmarshal([]byte(out), &b); err != nil {
		t.Fatalf("bench register: exit %d, not JSON: %v\n%s%s", code, err, out, errOut)
	}
	if code != 0 || b.Mode != "pipelined" || b.Count != 6 || b.Verified != 6 || b.Concurrency != 2 || b.Window != 2 ||
		b.PayloadSize != 32 || b.ElapsedMs <= 0 || b.RatePerSecond <= 0 || b.LatencyMs.Max < b.LatencyMs.P50 || b.LatencyMs.Max <= 0 {
		t.Errorf("bench register: exit %d, %+v", code, b)
	}
	if strings.Contains(out, "throughput:") {
		t.Errorf("bench register --output json printed the text report:\n%s", out)
	}
}
