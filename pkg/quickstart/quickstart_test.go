package quickstart

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// TestQuickstart runs the whole flow and checks every expectation held for
// the right reason.
func TestQuickstart(t *testing.T) {
	var out bytes.Buffer
	r, err := Run(context.Background(), Options{Dir: t.TempDir(), Out: &out})
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if !r.OK() || len(r.Expectations) != 1+len(DenyCases) {
		t.Fatalf("report %+v\n%s", r.Expectations, out.String())
	}
	if r.Expectations[0].Got != "allow" {
		t.Errorf("the attested image was not allowed: %+v", r.Expectations[0])
	}
	for i, c := range DenyCases {
		e := r.Expectations[i+1]
		if e.Got != c.Check || e.Reason == "" {
			t.Errorf("%s: denied at %q (%s), want %s", c.Name, e.Got, e.Reason, c.Check)
		}
	}
	if r.Attest == nil || r.Attest.EntryID == "" || r.Attest.TreeSize == 0 || !r.Attest.Attached() {
		t.Errorf("attest result %+v", r.Attest)
	}
	for _, want := range []string{"All 5 expectations held.", "trustfabric verify ", "denied at preimage", "denied at identity", "denied at receipts"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("story lacks %q", want)
		}
	}
}
