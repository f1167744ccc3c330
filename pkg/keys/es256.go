package keys

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
)

// verifyES256 checks a COSE ES256 signature (RFC 9053 §2.1: r and s as
// 32-byte big-endian integers, concatenated) over tbs with a P-256 key. It
// is what go-cose's ES256 verifier does (SHA-256 of tbs, then ECDSA with
// r and s) without a hash object and two big.Ints per call: r and s are
// DER-encoded on the stack for ecdsa.VerifyASN1, which rejects zero and
// out-of-range values as ecdsa.Verify does.
func verifyES256(pub *ecdsa.PublicKey, tbs, sig []byte) bool {
	if len(sig) != 64 || pub.Curve != elliptic.P256() {
		return false
	}
	digest := sha256.Sum256(tbs)
	var der [72]byte // SEQUENCE { INTEGER r, INTEGER s }: at most 2 + 2 × (2 + 33)
	n := 2
	n = appendDERInt(der[:], n, sig[:32])
	n = appendDERInt(der[:], n, sig[32:])
	der[0], der[1] = 0x30, byte(n-2)
	return ecdsa.VerifyASN1(pub, digest[:], der[:n])
}

// appendDERInt writes the minimal DER INTEGER of the unsigned big-endian b
// at der[n:] and returns the new length.
func appendDERInt(der []byte, n int, b []byte) int {
	for len(b) > 1 && b[0] == 0 {
		b = b[1:]
	}
	pad := 0
	if b[0]&0x80 != 0 {
		pad = 1
	}
	der[n], der[n+1] = 0x02, byte(len(b)+pad)
	n += 2
	if pad == 1 {
		der[n] = 0
		n++
	}
	return n + copy(der[n:], b)
}
