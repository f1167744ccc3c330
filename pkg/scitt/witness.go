package scitt

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/fxamacker/cbor/v2"
	f_note "github.com/transparency-dev/formats/note"
	"golang.org/x/mod/sumdb/note"

	"github.com/trustfabric/trustfabric/internal/cosewire"
)

// LabelCheckpoint is the unprotected header member (a text label, so that
// it cannot collide with IANA integer labels) in which a Trustfabric
// inclusion receipt carries the signed checkpoint it is anchored in: a bstr
// holding the checkpoint note (C2SP tlog-checkpoint) with the log's
// signature and the witnesses' cosignatures (C2SP tlog-cosignature). The
// checkpoint's size and root are the receipt's tree size and root, so a
// verifier that checks the receipt can check the cosignatures offline.
// Verifiers that ignore it still verify the receipt (RFC 9052 §3: unknown
// unprotected members are ignored). docs/design/witnesses.md.
const LabelCheckpoint = "trustfabric.checkpoint"

// MaxCheckpointSize bounds the checkpoint carried in a receipt.
const MaxCheckpointSize = 16 << 10

// ErrWitness is wrapped when a checkpoint is not cosigned by enough trusted
// witnesses, or is not the checkpoint of the receipt's tree.
var ErrWitness = errors.New("witness cosignatures")

// Witnesses is a witness policy: trusted witness keys and how many of them
// must have cosigned.
type Witnesses struct {
	// Keys are the witnesses' cosignature/v1 verifiers.
	Keys []note.Verifier
	// Threshold is how many distinct trusted witnesses must have cosigned.
	Threshold int
}

// ParseWitnessKey parses a witness verifier key: a signed-note vkey of
// type 0x04 (cosignature/v1, C2SP tlog-cosignature), or an Ed25519 (0x01)
// vkey, which is taken as the same key's cosignature/v1 key.
func ParseWitnessKey(vkey string) (note.Verifier, error) {
	v, err := f_note.NewVerifierForCosignatureV1(strings.TrimSpace(vkey))
	if err != nil {
		return nil, fmt.Errorf("witness key %q: %w", vkey, err)
	}
	return v, nil
}

// VerifyCosigned checks that checkpoint is the checkpoint of the tree of
// size treeSize and root root (as a verified receipt proves), and that at
// least w.Threshold of w.Keys cosigned it. It returns the names of the
// witnesses whose cosignature verified. Signatures by other keys (the log's,
// other witnesses') are ignored; a signature that claims to be by a trusted
// key and does not verify is an error.
func VerifyCosigned(checkpoint []byte, treeSize uint64, root []byte, w Witnesses) ([]string, error) {
	if len(checkpoint) == 0 {
		return nil, fmt.Errorf("%w: the receipt carries no checkpoint (%s)", ErrWitness, LabelCheckpoint)
	}
	if len(checkpoint) > MaxCheckpointSize {
		return nil, fmt.Errorf("%w: checkpoint of %d bytes", ErrWitness, len(checkpoint))
	}
	n, err := note.Open(checkpoint, note.VerifierList(w.Keys...))
	var unverified *note.UnverifiedNoteError
	switch {
	case errors.As(err, &unverified):
		n = unverified.Note
	case err != nil:
		// note.ErrInvalidSignature: a trusted witness's key id with a bad
		// signature (forged); or a malformed note.
		return nil, fmt.Errorf("%w: %w", ErrWitness, err)
	}
	size, cpRoot, err := checkpointBody(n.Text)
	if err != nil {
		return nil, err
	}
	if size != treeSize || !bytes.Equal(cpRoot, root) {
		return nil, fmt.Errorf("%w: the checkpoint (size %d) is not the receipt's tree (size %d) or its root differs", ErrWitness, size, treeSize)
	}
	seen := map[string]bool{}
	var names []string
	for _, s := range n.Sigs {
		key := fmt.Sprintf("%s+%08x", s.Name, s.Hash)
		if seen[key] {
			continue
		}
		seen[key] = true
		names = append(names, s.Name)
	}
	if len(names) < w.Threshold {
		return names, fmt.Errorf("%w: %d of %d required trusted witnesses cosigned the checkpoint of size %d", ErrWitness, len(names), w.Threshold, size)
	}
	return names, nil
}

// checkpointBody reads the size and root of a checkpoint's text.
func checkpointBody(text string) (uint64, []byte, error) {
	lines := strings.SplitN(text, "\n", 4)
	if len(lines) < 4 {
		return 0, nil, fmt.Errorf("%w: malformed checkpoint", ErrWitness)
	}
	size, err := strconv.ParseUint(lines[1], 10, 64)
	if err != nil {
		return 0, nil, fmt.Errorf("%w: checkpoint size %q", ErrWitness, lines[1])
	}
	root, err := base64.StdEncoding.DecodeString(lines[2])
	if err != nil || len(root) != 32 {
		return 0, nil, fmt.Errorf("%w: checkpoint root %q", ErrWitness, lines[2])
	}
	return size, root, nil
}

// WithCheckpoint returns the receipt with checkpoint carried under
// [LabelCheckpoint] in its unprotected header (replacing any there), for
// example a checkpoint of the same tree that gathered more cosignatures
// after the receipt was issued. The signed bytes are unchanged.
func (r *Receipt) WithCheckpoint(checkpoint []byte) ([]byte, error) {
	if len(checkpoint) > MaxCheckpointSize {
		return nil, fmt.Errorf("checkpoint of %d bytes (at most %d)", len(checkpoint), MaxCheckpointSize)
	}
	entries, err := cosewire.DecodeMap(r.msg.Unprotected)
	if err != nil {
		return nil, fmt.Errorf("unprotected header: %w", err)
	}
	m := make(map[any]cbor.RawMessage, len(entries)+1)
	for _, e := range entries {
		if e.Key != LabelCheckpoint {
			m[e.Key] = e.Value
		}
	}
	if len(checkpoint) > 0 {
		m[LabelCheckpoint] = cosewire.AppendBstr(nil, checkpoint)
	}
	u, err := cosewire.Enc.Marshal(m)
	if err != nil {
		return nil, err
	}
	return r.msg.WithUnprotected(u), nil
}
