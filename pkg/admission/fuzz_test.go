package admission

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// FuzzParseReview: any body yields a review or an ErrBadReview, never a
// panic; a parsed review's containers are within the limits or refused
// with one of the package's errors; and a parsed review re-encodes to one
// that parses to the same request.
func FuzzParseReview(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/*.json")
	for _, s := range seeds {
		b, err := os.ReadFile(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		rv, err := ParseReview(b)
		if err != nil {
			if !errors.Is(err, ErrBadReview) {
				t.Fatalf("error %v does not wrap ErrBadReview", err)
			}
			return
		}
		cs, err := rv.Request.Containers()
		if err != nil {
			if !errors.Is(err, ErrBadReview) && !errors.Is(err, ErrUnsupportedKind) && !errors.Is(err, ErrTooMany) {
				t.Fatalf("Containers: unexpected error %v", err)
			}
		} else if len(cs) > MaxContainers {
			t.Fatalf("%d containers accepted", len(cs))
		}
		again, err := json.Marshal(rv)
		if err != nil {
			t.Fatal(err)
		}
		rv2, err := ParseReview(again)
		if err != nil {
			t.Fatalf("re-encoded review does not parse: %v", err)
		}
		if rv2.Request.UID != rv.Request.UID || rv2.Request.Kind != rv.Request.Kind || rv2.Request.Namespace != rv.Request.Namespace {
			t.Fatal("re-encoded review differs")
		}
	})
}

// FuzzParseProviderRequest: Gatekeeper's requests, same rules.
func FuzzParseProviderRequest(f *testing.F) {
	f.Add([]byte(`{"apiVersion":"externaldata.gatekeeper.sh/v1beta1","kind":"ProviderRequest","request":{"keys":["a/b:c"]}}`))
	f.Add([]byte(`{"apiVersion":"externaldata.gatekeeper.sh/v1beta1","kind":"ProviderRequest","request":{"keys":[""]}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		pr, err := ParseProviderRequest(b)
		if err != nil {
			if !errors.Is(err, ErrBadReview) && !errors.Is(err, ErrTooMany) {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		if len(pr.Request.Keys) > MaxProviderKeys {
			t.Fatal("too many keys accepted")
		}
	})
}

// TestSeeds: the fuzz seeds decode as documented.
func TestSeeds(t *testing.T) {
	for _, c := range []struct {
		file       string
		containers int
		err        error
	}{
		{"deployment.json", 3, nil},
		{"pod-ephemeral.json", 2, nil},
		{"cronjob.json", 1, nil},
		{"unknown-kind.json", 0, ErrUnsupportedKind},
		{"duplicate-image-key.json", 0, ErrBadReview}, // "image" and "Image": encoding/json would read "evil"
	} {
		t.Run(c.file, func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join("testdata", c.file))
			if err != nil {
				t.Fatal(err)
			}
			rv, err := ParseReview(b)
			var cs []Container
			if err == nil {
				cs, err = rv.Request.Containers()
			}
			if c.err != nil {
				if !errors.Is(err, c.err) {
					t.Fatalf("error %v, want %v", err, c.err)
				}
				return
			}
			if err != nil || len(cs) != c.containers {
				t.Fatalf("%d containers, %v; want %d", len(cs), err, c.containers)
			}
		})
	}
}
