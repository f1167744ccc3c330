package oci

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseIndexFiles(t *testing.T) {
	files, _ := filepath.Glob("testdata/index/*.json")
	if len(files) == 0 {
		t.Fatal("no testdata")
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			_, err = parseIndex(b, 100)
			if good := strings.HasPrefix(filepath.Base(f), "good-"); good != (err == nil) {
				t.Errorf("parseIndex err = %v, good file: %v", err, good)
			}
			if err != nil && !errors.Is(err, ErrMalformedIndex) {
				t.Errorf("err %v does not wrap ErrMalformedIndex", err)
			}
		})
	}
}

func FuzzParseIndex(f *testing.F) {
	files, _ := filepath.Glob("testdata/index/*.json")
	for _, p := range files {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		ix, err := parseIndex(b, 50)
		if err != nil {
			if !errors.Is(err, ErrMalformedIndex) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		if len(ix.Manifests) > 50 {
			t.Fatal("entry limit not enforced")
		}
		for _, d := range ix.Manifests {
			if checkDigest(d.Digest) != nil || d.Size < 0 {
				t.Fatalf("accepted bad descriptor %+v", d)
			}
		}
		// Round trip: what we accept re-encodes to something we accept again.
		out, err := marshalIndex(ix.Manifests)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := parseIndex(out, 50); err != nil {
			t.Fatalf("re-encoded index rejected: %v", err)
		}
	})
}

func FuzzParseManifest(f *testing.F) {
	a := attachment(1)
	subj := Descriptor{MediaType: ManifestMediaType, Digest: EmptyDigest, Size: 2}
	good, _ := referrerManifest(subj, ArtifactType, newBlob(StatementMediaType, a.Statement, StatementTitle), newBlob(PreimageMediaType, a.Preimage, "preimage.intoto.json"), a.Annotations.Map())
	f.Add(good)
	f.Add([]byte(`{"schemaVersion":2}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := parseManifest(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		if _, err := json.Marshal(m); err != nil {
			t.Fatal(err)
		}
	})
}

func TestKeychain(t *testing.T) {
	env := map[string]string{"GITHUB_TOKEN": "ghs_secret", "GITHUB_ACTOR": "octo",
		"CI_REGISTRY": "registry.gitlab.example:5050", "CI_REGISTRY_USER": "gitlab-ci-token", "CI_REGISTRY_PASSWORD": "glcbt-secret",
		"DOCKER_CONFIG": t.TempDir(), "HOME": t.TempDir()}
	for k, v := range env {
		if strings.HasPrefix(k, "DOCKER") || k == "HOME" {
			t.Setenv(k, v)
		}
	}
	kc := Keychain(func(k string) string { return env[k] })
	for _, tc := range []struct{ ref, user, pass string }{
		{"ghcr.io/acme/widgets", "octo", "ghs_secret"},
		{"registry.gitlab.example:5050/g/p", "gitlab-ci-token", "glcbt-secret"},
		{"docker.io/library/alpine", "", ""},
	} {
		r, err := (&Client{insecure: map[string]bool{}}).parseRef(tc.ref)
		if err != nil {
			t.Fatal(err)
		}
		auth, err := kc.Resolve(r.Context())
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := auth.Authorization()
		if err != nil {
			t.Fatal(err)
		}
		if cfg.Username != tc.user || cfg.Password != tc.pass {
			t.Errorf("%s: got user %q", tc.ref, cfg.Username)
		}
	}
}
