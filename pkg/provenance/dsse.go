package provenance

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strconv"

	"github.com/trustfabric/trustfabric/internal/jsonlimit"
)

// ErrDSSESignature is wrapped when no signature of a DSSE envelope verifies
// with the given keys.
var ErrDSSESignature = errors.New("DSSE envelope signature does not verify")

// maxDSSESignatures bounds the signatures tried.
const maxDSSESignatures = 16

// PAE is the DSSE v1 pre-authentication encoding of a payload
// (https://github.com/secure-systems-lab/dsse/blob/v1.0.2/protocol.md):
// "DSSEv1" SP LEN(type) SP type SP LEN(body) SP body.
func PAE(payloadType string, body []byte) []byte {
	b := []byte("DSSEv1 ")
	b = strconv.AppendInt(b, int64(len(payloadType)), 10)
	b = append(b, ' ')
	b = append(b, payloadType...)
	b = append(b, ' ')
	b = strconv.AppendInt(b, int64(len(body)), 10)
	b = append(b, ' ')
	return append(b, body...)
}

// VerifyDSSE checks that at least one signature of the DSSE envelope
// verifies over the PAE of its payload with one of keys (*ecdsa.PublicKey:
// ASN.1 or r||s over SHA-256/384/512 by curve, as go-securesystemslib and
// sigstore sign; ed25519.PublicKey; *rsa.PublicKey: PSS or PKCS#1 v1.5 over
// SHA-256). Errors wrap [ErrDSSESignature] or [ErrMalformed].
func VerifyDSSE(envelope []byte, keys []crypto.PublicKey) error {
	if len(envelope) > MaxStatementSize {
		return fmt.Errorf("%w: %d bytes, the limit is %d", ErrTooLarge, len(envelope), MaxStatementSize)
	}
	if err := jsonlimit.CheckDepth(envelope, MaxDepth); err != nil {
		return fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	var env struct {
		PayloadType string `json:"payloadType"`
		Payload     string `json:"payload"`
		Signatures  []struct {
			KeyID string `json:"keyid"`
			Sig   string `json:"sig"`
		} `json:"signatures"`
	}
	if err := json.Unmarshal(envelope, &env); err != nil {
		return fmt.Errorf("%w: DSSE envelope: %w", ErrMalformed, err)
	}
	payload, err := decodeB64(env.Payload)
	if err != nil {
		return fmt.Errorf("%w: DSSE payload is not base64", ErrMalformed)
	}
	if len(env.Signatures) == 0 {
		return fmt.Errorf("%w: the envelope has no signatures", ErrDSSESignature)
	}
	if len(env.Signatures) > maxDSSESignatures {
		return fmt.Errorf("%w: %d signatures, the limit is %d", ErrMalformed, len(env.Signatures), maxDSSESignatures)
	}
	if len(keys) == 0 {
		return fmt.Errorf("%w: no key to verify it with", ErrDSSESignature)
	}
	pae := PAE(env.PayloadType, payload)
	for _, s := range env.Signatures {
		sig, err := decodeB64(s.Sig)
		if err != nil {
			continue
		}
		for _, k := range keys {
			if verifySig(k, pae, sig) {
				return nil
			}
		}
	}
	return fmt.Errorf("%w: none of its %d signatures verifies with the %d given keys", ErrDSSESignature, len(env.Signatures), len(keys))
}

func decodeB64(s string) ([]byte, error) {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return base64.URLEncoding.DecodeString(s)
	}
	return b, nil
}

func verifySig(k crypto.PublicKey, msg, sig []byte) bool {
	switch k := k.(type) {
	case *ecdsa.PublicKey:
		var digest []byte
		switch k.Curve {
		case elliptic.P384():
			h := sha512.Sum384(msg)
			digest = h[:]
		case elliptic.P521():
			h := sha512.Sum512(msg)
			digest = h[:]
		default:
			h := sha256.Sum256(msg)
			digest = h[:]
		}
		if ecdsa.VerifyASN1(k, digest, sig) {
			return true
		}
		n := (k.Curve.Params().BitSize + 7) / 8
		if len(sig) != 2*n {
			return false
		}
		r, s := new(big.Int).SetBytes(sig[:n]), new(big.Int).SetBytes(sig[n:])
		return ecdsa.Verify(k, digest, r, s)
	case ed25519.PublicKey:
		return len(sig) == ed25519.SignatureSize && ed25519.Verify(k, msg, sig)
	case *rsa.PublicKey:
		h := sha256.Sum256(msg)
		return rsa.VerifyPSS(k, crypto.SHA256, h[:], sig, nil) == nil || rsa.VerifyPKCS1v15(k, crypto.SHA256, h[:], sig) == nil
	}
	return false
}
