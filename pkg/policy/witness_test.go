package policy

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"testing"

	f_note "github.com/transparency-dev/formats/note"
	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/transparency-dev/merkle/testonly"
	"golang.org/x/mod/sumdb/note"

	"github.com/trustfabric/trustfabric/pkg/scitt"
)

// cosigner is a witness (cosignature/v1) or log (Ed25519) key.
type cosigner struct {
	signer note.Signer
	vkey   string
}

func newCosigner(t *testing.T, name string, witness bool) cosigner {
	t.Helper()
	skey, vkey, err := note.GenerateKey(rand.Reader, name)
	if err != nil {
		t.Fatal(err)
	}
	if !witness {
		s, err := note.NewSigner(skey)
		if err != nil {
			t.Fatal(err)
		}
		return cosigner{s, vkey}
	}
	s, err := f_note.NewSignerForCosignatureV1(skey)
	if err != nil {
		t.Fatal(err)
	}
	cv, err := f_note.VKeyToCosignatureV1(vkey)
	if err != nil {
		t.Fatal(err)
	}
	return cosigner{s, cv}
}

// signedCheckpoint is the checkpoint of (size, root) signed by the log and
// cosigned by the given witnesses.
func signedCheckpoint(t *testing.T, size uint64, root []byte, by ...cosigner) []byte {
	t.Helper()
	text := fmt.Sprintf("ts.example.org\n%d\n%s\n", size, base64.StdEncoding.EncodeToString(root))
	var ss []note.Signer
	for _, c := range by {
		ss = append(ss, c.signer)
	}
	b, err := note.Sign(&note.Note{Text: text}, ss...)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// forgeLast flips a bit in the last signature line of a note.
func forgeLast(b []byte) []byte {
	lines := bytes.Split(bytes.TrimSuffix(b, []byte("\n")), []byte("\n"))
	last := string(lines[len(lines)-1])
	i := strings.LastIndexByte(last, ' ')
	sig, _ := base64.StdEncoding.DecodeString(last[i+1:])
	sig[len(sig)-1] ^= 1
	lines[len(lines)-1] = []byte(last[:i+1] + base64.StdEncoding.EncodeToString(sig))
	return append(bytes.Join(lines, []byte("\n")), '\n')
}

// errForged marks the case whose error is a note.InvalidSignatureError.
var errForged = errors.New("forged")

// TestGateWitnesses: with `witnesses: {keys, threshold: 2}` the gate allows
// a receipt whose checkpoint two trusted witnesses cosigned, and denies,
// naming the witness check, on missing, forged or untrusted cosignatures
// and on a checkpoint of a forked log. All offline (WithOffline).
func TestGateWitnesses(t *testing.T) {
	w := newWorld(t)
	logKey := newCosigner(t, "ts.example.org", false)
	a, b, stranger := newCosigner(t, "witness-a.test", true), newCosigner(t, "witness-b.test", true), newCosigner(t, "stranger.test", true)
	policy := strings.Replace(basePolicy, "    keys: [ts-keys.cbor]\n",
		fmt.Sprintf("    keys: [ts-keys.cbor]\n    witnesses:\n      keys: [%q, %q]\n      threshold: 2\n", a.vkey, b.vkey), 1)
	v := w.verifier(policy)
	vNone := w.verifier(basePolicy)

	// The honest log's tree of size 4 (another last entry than the
	// receipt's): what the witnesses saw.
	honest := testonly.New(rfc6962.DefaultHasher)
	honest.AppendData([]byte("x"), []byte("y"), []byte("z"), []byte("honest"))

	cases := []struct {
		name string
		cp   func(size uint64, root []byte) []byte
		want error // nil: allowed
	}{
		{"cosigned by both", func(s uint64, r []byte) []byte { return signedCheckpoint(t, s, r, logKey, a, b) }, nil},
		{"cosigned by one of two required", func(s uint64, r []byte) []byte { return signedCheckpoint(t, s, r, logKey, a) }, scitt.ErrWitness},
		{"second cosignature by an untrusted key", func(s uint64, r []byte) []byte { return signedCheckpoint(t, s, r, logKey, a, stranger) }, scitt.ErrWitness},
		{"forged cosignature", func(s uint64, r []byte) []byte { return forgeLast(signedCheckpoint(t, s, r, logKey, a, b)) }, errForged},
		{"no checkpoint", nil, scitt.ErrWitness},
		{"forked log: the receipt's tree with the checkpoint the witnesses cosigned", func(s uint64, r []byte) []byte {
			return signedCheckpoint(t, s, honest.Hash(), logKey, a, b)
		}, scitt.ErrWitness},
		{"forked log: its own checkpoint, which no witness cosigned", func(s uint64, r []byte) []byte {
			return signedCheckpoint(t, s, r, logKey)
		}, scitt.ErrWitness},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := w.with(t)
			image, digest := w.pushImage("acme/witnessed")
			w.attest(evidence{image: image, digest: digest, checkpoint: c.cp})
			d, err := v.Verify(w.ctx, image)
			if err != nil {
				t.Fatal(err)
			}
			if c.want == nil {
				if !d.Allowed {
					t.Fatalf("denied: %v", d.Reasons)
				}
				return
			}
			if d.Allowed {
				t.Fatal("allowed, want deny")
			}
			ch, ok := d.Candidates[0].Failed()
			var bad *note.InvalidSignatureError
			if errors.Is(c.want, errForged) && !errors.As(ch.Err(), &bad) {
				t.Errorf("forged cosignature: %v, want a note.InvalidSignatureError", ch.Err())
			}
			if errors.Is(c.want, errForged) {
				c.want = scitt.ErrWitness
			}
			if !ok || ch.Name != CheckWitnesses || !errors.Is(ch.Err(), ErrWitnesses) || !errors.Is(ch.Err(), c.want) {
				t.Fatalf("failed at %+v (%v), want %s with %v", ch, ch.Err(), CheckWitnesses, c.want)
			}
			// A policy without witnesses ignores the checkpoint.
			if d, err := vNone.Verify(w.ctx, image); err != nil || !d.Allowed {
				t.Fatalf("without a witness policy: %v %v", err, d.Reasons)
			}
		})
	}
}

func TestWitnessPolicyValidation(t *testing.T) {
	a := newCosigner(t, "witness-a.test", true)
	for _, c := range []string{
		"    witnesses: {keys: []}\n",
		fmt.Sprintf("    witnesses: {keys: [%q], threshold: 2}\n", a.vkey),
		"    witnesses: {keys: [\"nonsense\"]}\n",
	} {
		doc := strings.Replace(basePolicy, "    keys: [ts-keys.cbor]\n", "    keys: [ts-keys.cbor]\n"+c, 1)
		if _, err := Parse([]byte(doc), t.TempDir()); err == nil {
			t.Errorf("accepted %q", c)
		}
	}
}
