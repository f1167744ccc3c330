package scitt

import (
	"errors"
	"testing"

	"github.com/fxamacker/cbor/v2"
	"github.com/veraison/go-cose"

	"github.com/trustfabric/trustfabric/internal/cosewire"
	"github.com/trustfabric/trustfabric/pkg/keys"
)

// resign decodes raw's protected header, lets mutate change it, and signs
// the result again with key over detached (the payload, or the detached
// root of a receipt); unprotected, when not nil, replaces the unprotected
// header.
func resign(t testing.TB, key *keys.PrivateKey, raw, detached []byte, unprotected []byte, mutate func(map[any]any)) []byte {
	t.Helper()
	m, err := cosewire.Parse(raw, MaxStatementSize)
	if err != nil {
		t.Fatal(err)
	}
	var hdr map[any]any
	if err := cbor.Unmarshal(m.Protected, &hdr); err != nil {
		t.Fatal(err)
	}
	norm := map[any]any{}
	for k, v := range hdr {
		if u, ok := k.(uint64); ok {
			k = int64(u)
		}
		norm[k] = v
	}
	mutate(norm)
	payload := m.Payload
	if detached != nil {
		payload = detached
	}
	protected, sig, err := signProtected(ctx, key, norm, payload)
	if err != nil {
		t.Fatal(err)
	}
	if unprotected == nil {
		unprotected = m.Unprotected
	}
	return cosewire.Build(protected, unprotected, m.Payload, sig)
}

// Issue 11 item 8: a statement marking an unknown label critical was
// accepted; RFC 9052 §3.1 requires refusing it.
func TestStatementCriticalHeaders(t *testing.T) {
	key := mustKey(t, cose.AlgorithmES256)
	good, err := SignStatement(ctx, key, testClaims(), []byte("p"))
	if err != nil {
		t.Fatal(err)
	}
	crit := func(labels ...any) func(map[any]any) {
		return func(h map[any]any) {
			h[int64(LabelCrit)] = labels
			h[int64(999)] = "must be understood"
			h["x-ext"] = 1
		}
	}
	emptyUnprotected := cosewire.EmptyMap
	critUnprotected, _ := cosewire.Enc.Marshal(map[int64]any{LabelCrit: []int64{999}})
	for name, tc := range map[string]struct {
		mutate      func(map[any]any)
		unprotected []byte
		ok          bool
	}{
		"unknown integer label":     {crit(int64(999)), emptyUnprotected, false},
		"unknown text label":        {crit("x-ext"), emptyUnprotected, false},
		"one known, one unknown":    {crit(int64(LabelPayloadHashAlg), int64(999)), emptyUnprotected, false},
		"empty crit":                {crit(), emptyUnprotected, false},
		"crit not an array":         {func(h map[any]any) { h[int64(LabelCrit)] = int64(999) }, emptyUnprotected, false},
		"crit in the unprotected":   {func(map[any]any) {}, critUnprotected, false},
		"understood labels":         {crit(int64(LabelPayloadHashAlg), int64(LabelPreimageContentType), int64(LabelCWTClaims)), emptyUnprotected, true},
		"no crit (unknown ignored)": {func(h map[any]any) { h[int64(999)] = "ignorable" }, emptyUnprotected, true},
	} {
		raw := resign(t, key, good, nil, tc.unprotected, tc.mutate)
		st, err := ParseStatement(raw)
		if !tc.ok {
			if !errors.Is(err, ErrCriticalHeader) {
				t.Errorf("%s: err = %v, want ErrCriticalHeader", name, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if _, err := st.Verify(keys.Set{key.Public()}, WithPreimage([]byte("p"))); err != nil {
			t.Errorf("%s: verify: %v", name, err)
		}
	}
}

func TestReceiptCriticalHeaders(t *testing.T) {
	key := mustKey(t, cose.AlgorithmES256)
	stmt, err := SignStatement(ctx, key, testClaims(), []byte("p"))
	if err != nil {
		t.Fatal(err)
	}
	s, _ := ParseStatement(stmt)
	leaf := LeafHash(s.Registered(), LeafIETF)
	good, err := IssueReceipt(ctx, key, ReceiptClaims{Issuer: "https://ts.example"}, InclusionProof{TreeSize: 1, LeafIndex: 0}, leaf)
	if err != nil {
		t.Fatal(err)
	}
	bad := resign(t, key, good, leaf, nil, func(h map[any]any) { h[int64(LabelCrit)] = []any{int64(-70001)}; h[int64(-70001)] = 1 })
	if _, err := ParseReceipt(bad); !errors.Is(err, ErrCriticalHeader) {
		t.Fatalf("receipt with an unknown critical label: err = %v, want ErrCriticalHeader", err)
	}
	// In a transparent statement too: AddReceipt refuses it, and a
	// transparent statement built by hand does not verify.
	if _, err := AddReceipt(stmt, bad); !errors.Is(err, ErrCriticalHeader) {
		t.Fatalf("AddReceipt: err = %v, want ErrCriticalHeader", err)
	}
	m, _ := cosewire.Parse(stmt, MaxStatementSize)
	u, _ := cosewire.Enc.Marshal(map[int64]any{LabelReceipts: [][]byte{bad}})
	ts := cosewire.Build(m.Protected, u, m.Payload, m.Signature)
	if _, err := VerifyTransparentStatement(ts, keys.Set{key.Public()}, LeafIETF, keys.Set{key.Public()}, WithPreimage([]byte("p"))); !errors.Is(err, ErrCriticalHeader) {
		t.Fatalf("transparent statement with a critical-unknown receipt: err = %v, want ErrCriticalHeader", err)
	}
	okCrit := resign(t, key, good, leaf, nil, func(h map[any]any) { h[int64(LabelCrit)] = []any{int64(LabelVDS)} })
	r, err := ParseReceipt(okCrit)
	if err != nil {
		t.Fatalf("crit naming vds: %v", err)
	}
	if _, err := r.VerifyInclusion(stmt, keys.Set{key.Public()}, LeafIETF); err != nil {
		t.Fatalf("crit naming vds: verify: %v", err)
	}
}

// critSeeds are fuzz seeds: a statement with an unknown critical label and
// one with an understood one.
func critSeeds(f *testing.F) [][]byte {
	key := mustKey(f, cose.AlgorithmES256)
	good, err := SignStatement(ctx, key, testClaims(), []byte("p"))
	if err != nil {
		f.Fatal(err)
	}
	return [][]byte{
		resign(f, key, good, nil, nil, func(h map[any]any) { h[int64(LabelCrit)] = []any{int64(999), "x"}; h[int64(999)] = 1 }),
		resign(f, key, good, nil, nil, func(h map[any]any) { h[int64(LabelCrit)] = []any{int64(LabelCWTClaims)} }),
	}
}
