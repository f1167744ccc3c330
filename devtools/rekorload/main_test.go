package main

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"
)

// TestPresign: every request is valid protojson for a hashedrekord v0.0.2
// CreateEntryRequest whose signature verifies over its own, distinct digest.
func TestPresign(t *testing.T) {
	reqs, err := presign(20)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for i, r := range reqs {
		var cer struct {
			HR struct {
				Digest    []byte `json:"digest"`
				Signature struct {
					Content  []byte `json:"content"`
					Verifier struct {
						PublicKey struct {
							RawBytes []byte `json:"rawBytes"`
						} `json:"publicKey"`
						KeyDetails string `json:"keyDetails"`
					} `json:"verifier"`
				} `json:"signature"`
			} `json:"hashedRekordRequestV002"`
		}
		if err := json.Unmarshal(r.body, &cer); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		if string(cer.HR.Digest) != string(r.digest) || len(r.digest) != sha256.Size || seen[string(r.digest)] {
			t.Fatalf("request %d: digest %x (want %x, distinct)", i, cer.HR.Digest, r.digest)
		}
		seen[string(r.digest)] = true
		pub, err := x509.ParsePKIXPublicKey(cer.HR.Signature.Verifier.PublicKey.RawBytes)
		if err != nil {
			t.Fatal(err)
		}
		ek, ok := pub.(*ecdsa.PublicKey)
		if !ok || cer.HR.Signature.Verifier.KeyDetails != "PKIX_ECDSA_P256_SHA_256" ||
			!ecdsa.VerifyASN1(ek, r.digest, cer.HR.Signature.Content) {
			t.Fatalf("request %d: signature does not verify", i)
		}
	}
}

// testLog is a two-entry log with a checkpoint signed like Rekor's.
type testLog struct {
	v       note.Verifier
	signer  note.Signer
	digests [2][]byte
	bodies  [2][]byte
}

func newTestLog(t *testing.T) *testLog {
	t.Helper()
	file := filepath.Join(t.TempDir(), "signer.pem")
	if err := keygen(file); err != nil {
		t.Fatal(err)
	}
	v, err := logVerifier(file, "rekor.test")
	if err != nil {
		t.Fatal(err)
	}
	l := &testLog{v: v, signer: signerFromFile(t, file, "rekor.test")}
	for i := range l.bodies {
		d := sha256.Sum256([]byte{byte(i)})
		l.digests[i] = d[:]
		l.bodies[i] = fmt.Appendf(nil, `{"apiVersion":"0.0.2","kind":"hashedrekord","spec":{"hashedRekordV002":{"data":{"algorithm":"SHA2_256","digest":%q}}}}`,
			base64.StdEncoding.EncodeToString(d[:]))
	}
	return l
}

// signerFromFile makes a note signer for the Ed25519 key keygen wrote.
func signerFromFile(t *testing.T, file, origin string) note.Signer {
	t.Helper()
	v, err := logVerifier(file, origin)
	if err != nil {
		t.Fatal(err)
	}
	priv := readEd25519(t, file)
	skey := fmt.Sprintf("PRIVATE+KEY+%s+%08x+%s", origin, v.KeyHash(), base64.StdEncoding.EncodeToString(append([]byte{1}, priv.Seed()...)))
	s, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// answer is Rekor's 201 body for entry i, with the checkpoint signed by s.
func (l *testLog) answer(t *testing.T, i int, s note.Signer) []byte {
	t.Helper()
	h := rfc6962.DefaultHasher
	leaves := [2][]byte{h.HashLeaf(l.bodies[0]), h.HashLeaf(l.bodies[1])}
	root := h.HashChildren(leaves[0], leaves[1])
	env, err := note.Sign(&note.Note{Text: fmt.Sprintf("rekor.test\n2\n%s\n", base64.StdEncoding.EncodeToString(root))}, s)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(map[string]any{
		"logIndex": fmt.Sprint(i),
		"inclusionProof": map[string]any{
			"logIndex": fmt.Sprint(i), "rootHash": root, "treeSize": "2", "hashes": [][]byte{leaves[1-i]},
			"checkpoint": map[string]string{"envelope": string(env)},
		},
		"canonicalizedBody": l.bodies[i],
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestVerifyEntry(t *testing.T) {
	l := newTestLog(t)
	other := signerFromFile(t, func() string {
		f := filepath.Join(t.TempDir(), "other.pem")
		if err := keygen(f); err != nil {
			t.Fatal(err)
		}
		return f
	}(), "rekor.test")
	good := l.answer(t, 1, l.signer)
	for _, tc := range []struct {
		name   string
		digest []byte
		answer []byte
		ok     bool
	}{
		{"valid", l.digests[1], good, true},
		{"valid, first entry", l.digests[0], l.answer(t, 0, l.signer), true},
		{"another entry's answer", l.digests[0], good, false},
		{"proof of the other leaf", l.digests[1], []byte(strings.Replace(string(good), `"logIndex":"1"`, `"logIndex":"0"`, 2)), false},
		{"checkpoint signed by another key", l.digests[1], l.answer(t, 1, other), false},
		{"tree size differs from the checkpoint", l.digests[1], []byte(strings.Replace(string(good), `"treeSize":"2"`, `"treeSize":"3"`, 1)), false},
		{"not JSON", l.digests[1], []byte("<html>"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := verifyEntry(tc.digest, tc.answer, l.v, &sync.Mutex{}, map[string]error{})
			if (err == nil) != tc.ok {
				t.Fatalf("verifyEntry: %v, want ok=%v", err, tc.ok)
			}
		})
	}
	n, err := verifyAll([]request{{digest: l.digests[1]}, {digest: l.digests[0]}}, []result{{answer: good}, {answer: good}}, l.v)
	if n != 1 || !errors.Is(err, ErrUnverified) {
		t.Fatalf("verifyAll: %d verified, %v", n, err)
	}
}

func readEd25519(t *testing.T, file string) ed25519.PrivateKey {
	t.Helper()
	v, err := loadEd25519(file)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestKeygenLoadsAsEd25519(t *testing.T) {
	file := filepath.Join(t.TempDir(), "k.pem")
	if err := keygen(file); err != nil {
		t.Fatal(err)
	}
	k := readEd25519(t, file)
	msg := make([]byte, 32)
	rand.Read(msg)
	if !ed25519.Verify(k.Public().(ed25519.PublicKey), msg, ed25519.Sign(k, msg)) {
		t.Fatal("key does not sign")
	}
	if _, err := logVerifier(filepath.Join(t.TempDir(), "missing.pem"), "rekor.test"); err == nil {
		t.Fatal("missing key file accepted")
	}
}
