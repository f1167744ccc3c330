package transparency

import (
	"bytes"
	"context"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/trustfabric/trustfabric/pkg/scitt"
	"github.com/trustfabric/trustfabric/pkg/scitt/scrapi"
)

// TestReadBody covers readBody's cases: exact, shorter than announced, longer
// than announced (read on), and no announced length.
func TestReadBody(t *testing.T) {
	for _, c := range []struct {
		body      string
		announced int64
		want      string
		fails     bool
	}{
		{"statement", 9, "statement", false},
		{"state", 9, "", true},
		{"statement and more", 9, "statement and more", false},
		{"statement", 0, "statement", false},
		{"statement", -1, "statement", false},
	} {
		got, err := readBody(strings.NewReader(c.body), c.announced)
		if (err != nil) != c.fails || string(got) != c.want {
			t.Errorf("readBody(%q, %d) = %q, %v; want %q, fails %v", c.body, c.announced, got, err, c.want, c.fails)
		}
	}
}

// TestRegisteringReceiptNotKept: the receipt answered to the POST that
// registered a statement (201) is not kept in the receipt cache (its client
// has it); a GET of the entry answers a receipt that verifies, and that one
// is kept.
func TestRegisteringReceiptNotKept(t *testing.T) {
	issuer, pol := trustingPolicy(t)
	svc, err := Open(t.Context(), Options{Dir: t.TempDir(), Policy: pol, BatchMaxAge: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close(context.Background())
	srv := httptest.NewServer(svc.Handler(HandlerOptions{}))
	defer srv.Close()
	stmt, err := scitt.SignStatement(t.Context(), issuer, scitt.Claims{Issuer: "https://ci.test", Subject: "kept"}, []byte("payload"))
	if err != nil {
		t.Fatal(err)
	}
	entry, _ := scitt.EntryHash(stmt)
	check := func(resp *http.Response, want int) {
		t.Helper()
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != want {
			t.Fatalf("status %d, want %d: %s", resp.StatusCode, want, body)
		}
		r, err := scitt.ParseReceipt(body)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := r.VerifyInclusion(stmt, svc.Keys(), scitt.LeafIETF); err != nil {
			t.Fatalf("receipt does not verify: %v", err)
		}
	}
	resp, err := http.Post(srv.URL+"/entries", scrapi.MediaTypeCOSE, bytes.NewReader(stmt))
	if err != nil {
		t.Fatal(err)
	}
	check(resp, http.StatusCreated)
	if svc.receipts.get(entry) != nil {
		t.Fatal("the registering request's receipt was kept in the cache")
	}
	resp, err = http.Get(srv.URL + "/entries/" + hex.EncodeToString(entry[:]))
	if err != nil {
		t.Fatal(err)
	}
	check(resp, http.StatusOK)
	if svc.receipts.get(entry) == nil {
		t.Fatal("the receipt answered to GET was not kept")
	}
}
