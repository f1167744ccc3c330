package scitt

import (
	"fmt"

	"github.com/fxamacker/cbor/v2"

	"github.com/trustfabric/trustfabric/internal/cosewire"
)

// AddReceipt returns statement with receipt appended to the receipts under
// label 394 of its unprotected header (RFC 9943 §7), creating the list when
// absent. Other unprotected parameters are kept; the protected header,
// payload and signature bytes are copied unchanged.
func AddReceipt(statement, receipt []byte) ([]byte, error) {
	m, err := cosewire.Parse(statement, MaxStatementSize)
	if err != nil {
		return nil, fmt.Errorf("add receipt: statement: %w", err)
	}
	if _, err := ParseReceipt(receipt); err != nil {
		return nil, fmt.Errorf("add receipt: %w", err)
	}
	u, err := decodeHeader(m.Unprotected, "unprotected")
	if err != nil {
		return nil, fmt.Errorf("add receipt: %w", err)
	}
	var list [][]byte
	if raw := u.raw(LabelReceipts); raw != nil {
		if list, err = decodeReceiptList(raw); err != nil {
			return nil, fmt.Errorf("add receipt: %w", err)
		}
	}
	if len(list) >= maxReceiptsPerStatement {
		return nil, fmt.Errorf("add receipt: %w: already %d receipts", ErrMalformed, len(list))
	}
	list = append(list, receipt)
	enc, err := cosewire.Enc.Marshal(list)
	if err != nil {
		return nil, fmt.Errorf("add receipt: %w", err)
	}
	u.set(int64(LabelReceipts), enc)
	return spliceUnprotected(m, u)
}

// Receipts returns the encoded receipts of a Transparent Statement, in
// order (none for a plain Signed Statement).
func Receipts(statement []byte) ([][]byte, error) {
	s, err := ParseStatement(statement)
	if err != nil {
		return nil, err
	}
	return s.Receipts, nil
}

// RemoveReceipts returns statement without label 394. When no other
// unprotected parameter remains, the result is byte-identical to the
// statement as it was registered.
func RemoveReceipts(statement []byte) ([]byte, error) {
	m, err := cosewire.Parse(statement, MaxStatementSize)
	if err != nil {
		return nil, fmt.Errorf("remove receipts: %w", err)
	}
	u, err := decodeHeader(m.Unprotected, "unprotected")
	if err != nil {
		return nil, fmt.Errorf("remove receipts: %w", err)
	}
	u.del(int64(LabelReceipts))
	return spliceUnprotected(m, u)
}

func spliceUnprotected(m *cosewire.Sign1, u header) ([]byte, error) {
	if len(u) == 0 {
		return m.WithUnprotected(cosewire.EmptyMap), nil
	}
	out := make(map[any]cbor.RawMessage, len(u))
	for _, e := range u {
		out[e.Key] = cbor.RawMessage(e.Value)
	}
	enc, err := cosewire.Enc.Marshal(out)
	if err != nil {
		return nil, fmt.Errorf("encode unprotected header: %w", err)
	}
	return m.WithUnprotected(enc), nil
}
