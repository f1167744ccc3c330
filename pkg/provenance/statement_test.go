package provenance

import (
	"bytes"
	"context"
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

func TestParseStatementFiles(t *testing.T) {
	files, err := filepath.Glob("testdata/statements/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no testdata: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			st, err := ParseStatement(b)
			if strings.HasPrefix(filepath.Base(f), "good-") {
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(st.Raw, b) {
					t.Error("Raw is not the input bytes")
				}
				if st.PredicateType != "https://example.com/test/v1" || len(st.Subjects) != 1 {
					t.Errorf("parsed %+v", st)
				}
				return
			}
			if !errors.Is(err, ErrMalformed) {
				t.Errorf("err = %v, want ErrMalformed", err)
			}
		})
	}
	big := bytes.Repeat([]byte(" "), MaxStatementSize+1)
	if _, err := ParseStatement(big); !errors.Is(err, ErrTooLarge) {
		t.Errorf("oversize: err = %v, want ErrTooLarge", err)
	}
}

func TestGenerateSupplied(t *testing.T) {
	b, err := os.ReadFile("testdata/statements/good-dsse.json")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	img := "reg.example/app@sha256:4b5e2a3c1d0f9e8d7c6b5a49382716051f2e3d4c5b6a79880716253443526170"
	// The file's signature is a placeholder: refused without a key and with
	// one; the same payload signed for real is accepted with its key.
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	keys := []crypto.PublicKey{pub}
	if _, err := Generate(ctx, Request{Images: []string{img}, Supplied: b}); !errors.Is(err, ErrDSSESignature) {
		t.Errorf("envelope without a key: err = %v, want ErrDSSESignature", err)
	}
	if _, err := Generate(ctx, Request{Images: []string{img}, Supplied: b, SuppliedKeys: keys}); !errors.Is(err, ErrDSSESignature) {
		t.Errorf("envelope with a placeholder signature: err = %v, want ErrDSSESignature", err)
	}
	var env map[string]any
	if err := json.Unmarshal(b, &env); err != nil {
		t.Fatal(err)
	}
	payload, _ := base64.StdEncoding.DecodeString(env["payload"].(string))
	env["signatures"] = []any{map[string]string{"sig": base64.StdEncoding.EncodeToString(ed25519.Sign(priv, PAE(env["payloadType"].(string), payload)))}}
	b, _ = json.Marshal(env)
	st, err := Generate(ctx, Request{Images: []string{img}, Supplied: b, SuppliedKeys: keys})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(st.Raw, b) || st.MediaType != DSSEMediaType {
		t.Errorf("supplied envelope changed or mistyped: %s", st.MediaType)
	}
	other := "reg.example/app@sha256:" + strings.Repeat("0", 64)
	if _, err := Generate(ctx, Request{Images: []string{other}, Supplied: b}); !errors.Is(err, ErrSubjectNotCovered) {
		t.Errorf("uncovered subject: err = %v, want ErrSubjectNotCovered", err)
	}
	if _, err := Generate(ctx, Request{Images: []string{"reg.example/app:latest"}, Supplied: b}); err == nil {
		t.Error("tag without resolver accepted")
	}
}

func TestGenerateFromFiles(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "app.tar")
	if err := os.WriteFile(p, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	st, err := Generate(context.Background(), Request{Files: []string{p}, Getenv: loadEnv(t, "tekton")}, fixedClock)
	if err != nil {
		t.Fatal(err)
	}
	want := Subject{Name: "app.tar", Digest: map[string]string{"sha256": "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"}}
	if !st.Covers(want) || st.Subjects[0].Name != "app.tar" {
		t.Errorf("subjects = %+v", st.Subjects)
	}
	if _, err := Generate(context.Background(), Request{Files: []string{p}, Getenv: func(string) string { return "" }}); err == nil {
		t.Error("generation outside CI accepted")
	}
}

type countingResolver struct{ calls int }

func (r *countingResolver) Resolve(_ context.Context, ref string) (string, string, error) {
	r.calls++
	return "reg.example/app", "sha256:4b5e2a3c1d0f9e8d7c6b5a49382716051f2e3d4c5b6a79880716253443526170", nil
}

func TestImageSubjectResolvesTagOnce(t *testing.T) {
	r := &countingResolver{}
	s, err := ImageSubject(context.Background(), "reg.example/app:v1", r)
	if err != nil || r.calls != 1 || s.Name != "reg.example/app" {
		t.Fatalf("ImageSubject = %+v, %v, calls %d", s, err, r.calls)
	}
	s, err = ImageSubject(context.Background(), "localhost:5000/app:v1@sha256:4b5e2a3c1d0f9e8d7c6b5a49382716051f2e3d4c5b6a79880716253443526170", r)
	if err != nil || r.calls != 1 || s.Name != "localhost:5000/app" {
		t.Fatalf("digest ref: %+v, %v, calls %d", s, err, r.calls)
	}
	if _, err := ImageSubject(context.Background(), "reg.example/app@sha256:XYZ", r); err == nil {
		t.Error("bad digest accepted")
	}
}

func FuzzParseStatement(f *testing.F) {
	files, _ := filepath.Glob("testdata/statements/*.json")
	for _, p := range files {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		st, err := ParseStatement(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrTooLarge) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		if !bytes.Equal(st.Raw, b) || len(st.Subjects) == 0 || st.PredicateType == "" {
			t.Fatalf("accepted statement without its invariants: %+v", st)
		}
	})
}
