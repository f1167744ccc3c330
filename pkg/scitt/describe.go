package scitt

import (
	"encoding/hex"
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/fxamacker/cbor/v2"
	"github.com/veraison/go-cose"

	"github.com/trustfabric/trustfabric/internal/cosewire"
	"github.com/trustfabric/trustfabric/pkg/keys"
)

// Description is a readable view of a SCITT object or key file, for
// `trustfabric inspect`. Header labels are named ("alg (1)"), byte strings
// are hex, times are RFC 3339.
type Description struct {
	// Type is signed-statement, transparent-statement, receipt or keys.
	Type        string         `json:"type"`
	Size        int            `json:"size"`
	EntryID     string         `json:"entry_id,omitempty"`
	Protected   map[string]any `json:"protected,omitempty"`
	Unprotected map[string]any `json:"unprotected,omitempty"`
	Payload     *PayloadInfo   `json:"payload,omitempty"`
	Signature   int            `json:"signature_size,omitempty"`
	// Proofs lists the proofs of a receipt.
	Proofs []ProofInfo `json:"proofs,omitempty"`
	// Receipts describes the receipts of a transparent statement.
	Receipts []*Description `json:"receipts,omitempty"`
	// Keys describes the keys of a key file.
	Keys []KeyInfo `json:"keys,omitempty"`
}

// PayloadInfo describes a payload.
type PayloadInfo struct {
	Detached bool   `json:"detached,omitempty"`
	Size     int    `json:"size"`
	Hex      string `json:"hex,omitempty"`
	Text     string `json:"text,omitempty"`
}

// ProofInfo describes one RFC 9162 proof.
type ProofInfo struct {
	Kind      string   `json:"kind"`
	TreeSize  uint64   `json:"tree_size,omitempty"`
	LeafIndex uint64   `json:"leaf_index"`
	TreeSize1 uint64   `json:"tree_size_1,omitempty"`
	TreeSize2 uint64   `json:"tree_size_2,omitempty"`
	Path      []string `json:"path"`
}

// KeyInfo describes a key.
type KeyInfo struct {
	Type           string `json:"type"`
	Alg            string `json:"alg"`
	KID            string `json:"kid,omitempty"`
	JWKThumbprint  string `json:"jwk_thumbprint"`
	COSEThumbprint string `json:"cose_thumbprint"`
}

// Describe parses b as a statement, receipt or key file and describes it.
func Describe(b []byte) (*Description, error) {
	m, err := cosewire.Parse(b, MaxStatementSize)
	if err == nil {
		return describeSign1(m)
	}
	ks, kerr := keys.ParsePublic(b)
	if kerr != nil {
		if len(b) > 0 && (b[0] == 0xd2 || b[0] == 0x84) {
			return nil, err // it looked like COSE; say why it is not
		}
		return nil, fmt.Errorf("not a COSE statement, receipt or key file: %w", kerr)
	}
	d := &Description{Type: "keys", Size: len(b)}
	for _, k := range ks {
		ki := KeyInfo{Type: keys.Describe(k.Key), Alg: k.Alg.String(), JWKThumbprint: hex.EncodeToString(k.JWKThumbprint()), COSEThumbprint: hex.EncodeToString(k.COSEThumbprint())}
		if k.KID != nil {
			ki.KID = kidString(k.KID)
		}
		d.Keys = append(d.Keys, ki)
	}
	return d, nil
}

func describeSign1(m *cosewire.Sign1) (*Description, error) {
	p, err := decodeHeader(m.Protected, "protected")
	if err != nil {
		return nil, err
	}
	d := &Description{Size: len(m.Raw), Signature: len(m.Signature)}
	d.Protected = describeHeader(p)
	u, err := decodeHeader(m.Unprotected, "unprotected")
	if err != nil {
		return nil, err
	}
	if p.has(LabelVDS) {
		d.Type = "receipt"
		r, err := receiptFrom(m)
		if err != nil {
			return nil, err
		}
		for _, pr := range r.Inclusion {
			d.Proofs = append(d.Proofs, ProofInfo{Kind: "inclusion", TreeSize: pr.TreeSize, LeafIndex: pr.LeafIndex, Path: hexList(pr.Path)})
		}
		for _, pr := range r.Consistency {
			d.Proofs = append(d.Proofs, ProofInfo{Kind: "consistency", TreeSize1: pr.TreeSize1, TreeSize2: pr.TreeSize2, Path: hexList(pr.Path)})
		}
		u.del(int64(LabelVDP))
	} else {
		s, err := statementFrom(m)
		if err != nil {
			return nil, err
		}
		d.Type = "signed-statement"
		e := s.EntryHash()
		d.EntryID = hex.EncodeToString(e[:])
		for i, rb := range s.Receipts {
			d.Type = "transparent-statement"
			rd, err := Describe(rb)
			if err != nil {
				return nil, fmt.Errorf("receipt %d: %w", i, err)
			}
			d.Receipts = append(d.Receipts, rd)
		}
		u.del(int64(LabelReceipts))
	}
	if len(u) > 0 {
		d.Unprotected = describeHeader(u)
	}
	pi := &PayloadInfo{Detached: m.Detached, Size: len(m.Payload)}
	if !m.Detached {
		if isText(m.Payload) {
			pi.Text = truncate(string(m.Payload), 4096)
		} else if len(m.Payload) <= 64 {
			pi.Hex = hex.EncodeToString(m.Payload)
		}
	}
	d.Payload = pi
	return d, nil
}

var labelNames = map[any]string{
	int64(LabelAlg): "alg", int64(LabelCrit): "crit", int64(LabelContentType): "content_type", int64(LabelKID): "kid",
	int64(16): "typ", int64(LabelCWTClaims): "cwt_claims", int64(LabelX5Chain): "x5chain", int64(LabelX5T): "x5t",
	int64(LabelPayloadHashAlg): "payload_hash_alg", int64(LabelPreimageContentType): "preimage_content_type",
	int64(LabelPayloadLocation): "payload_location", int64(LabelReceipts): "receipts", int64(LabelVDS): "vds",
	int64(LabelVDP): "proofs", LabelWIT: "wit",
}

var cwtNames = map[any]string{int64(1): "iss", int64(2): "sub", int64(3): "aud", int64(4): "exp", int64(5): "nbf", int64(6): "iat", int64(7): "cti", int64(8): "cnf"}

func describeHeader(h header) map[string]any {
	out := make(map[string]any, len(h))
	for _, e := range h {
		k, raw := e.Key, e.Value
		name := labelName(k, labelNames)
		var v any
		if err := cosewire.Dec.Unmarshal(raw, &v); err != nil {
			out[name] = "undecodable: " + hex.EncodeToString(raw)
			continue
		}
		switch k {
		case int64(LabelAlg):
			if a, ok := v.(int64); ok {
				out[name] = fmt.Sprintf("%s (%d)", cose.Algorithm(a), a)
				continue
			}
		case int64(LabelPayloadHashAlg):
			if a, ok := v.(int64); ok && a == -16 {
				out[name] = "SHA-256 (-16)"
				continue
			}
		case int64(LabelVDS):
			if a, ok := v.(int64); ok && a == VDSRFC9162SHA256 {
				out[name] = "RFC9162_SHA256 (1)"
				continue
			}
		case int64(LabelCWTClaims):
			if m, ok := v.(map[any]any); ok {
				claims := map[string]any{}
				for ck, cv := range m {
					cn := labelName(ck, cwtNames)
					if ck == int64(4) || ck == int64(5) || ck == int64(6) {
						if n, ok := cv.(int64); ok {
							claims[cn] = time.Unix(n, 0).UTC().Format(time.RFC3339)
							continue
						}
					}
					claims[cn] = plain(cv)
				}
				out[name] = claims
				continue
			}
		case int64(LabelKID):
			if b, ok := v.([]byte); ok {
				out[name] = kidString(b)
				continue
			}
		}
		out[name] = plain(v)
	}
	return out
}

func labelName(k any, names map[any]string) string {
	if n, ok := names[k]; ok {
		if i, isInt := k.(int64); isInt {
			return n + " (" + strconv.FormatInt(i, 10) + ")"
		}
		return n
	}
	return fmt.Sprint(k)
}

// plain turns decoded CBOR into JSON-friendly values.
func plain(v any) any {
	switch t := v.(type) {
	case []byte:
		return "h'" + hex.EncodeToString(t) + "'"
	case []any:
		out := make([]any, len(t))
		for i, e := range t {
			out[i] = plain(e)
		}
		return out
	case map[any]any:
		out := make(map[string]any, len(t))
		keys := make([]string, 0, len(t))
		for k, e := range t {
			ks := fmt.Sprint(k)
			keys = append(keys, ks)
			out[ks] = plain(e)
		}
		sort.Strings(keys)
		return out
	case cbor.Tag:
		return map[string]any{"tag": t.Number, "content": plain(t.Content)}
	}
	return v
}

func kidString(b []byte) string {
	if printable(b) {
		return string(b)
	}
	return "h'" + hex.EncodeToString(b) + "'"
}

func hexList(bs [][]byte) []string {
	out := make([]string, len(bs))
	for i, b := range bs {
		out[i] = hex.EncodeToString(b)
	}
	return out
}

func isText(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if c < 0x09 || (c > 0x0d && c < 0x20) || c == 0x7f {
			return false
		}
	}
	return true
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
