// Package keys is Trustfabric's one home for keys and algorithms: the
// algorithm table mapping names to COSE (RFC 9053) and JOSE (RFC 7518)
// identifiers, loading and writing keys as JWK and JWK Set (RFC 7517),
// COSE_Key and COSE_KeySet (RFC 9052 §7) and PEM (SPKI, PKCS#8, SEC 1,
// PKCS#1, X.509 certificates), thumbprints (RFC 7638 JWK, RFC 9679 COSE),
// the kid-matching rule every verifier uses, and one private-key type that
// signs both COSE and JOSE objects.
//
// # Key ids
//
// A kid names a key when it equals, byte for byte, one of:
//   - the RFC 7638 JWK thumbprint of the key (SHA-256, raw bytes; the kid of
//     Trustfabric's statement signers, design §2.1);
//   - the RFC 9679 COSE key thumbprint (the kid of Transparency Service keys,
//     design §2.2);
//   - the kid the key was published under: a COSE_Key kid, or a JWK "kid"
//     member as UTF-8 bytes (the convention of Transmute's and other SCITT
//     implementations), or, when that JWK kid is the base64url encoding of
//     one of the thumbprints, the decoded bytes.
//
// When a kid names no key of a set, a verifier tries every key of the set
// ([Set.Lookup]); a wrong key then fails with [ErrBadSignature], never with a
// silent accept.
//
// # COSE_Key
//
// COSE_Key objects are read and written with go-cose's [cose.Key] for EC2
// and OKP keys. This package extends it where go-cose does not go, and
// documents each extension: RSA keys (kty 3, RFC 8230) are read (public only);
// text-string kids (published by some implementations) are accepted as their
// UTF-8 bytes; input is first checked to be well-formed, strictly encoded CBOR
// with no duplicate labels and parameters of the right types (go-cose would
// panic on a non-integer curve); an EC2 private key's d must match its x and
// y. RFC 9679 thumbprints are computed here from the deterministic encoding of
// the required parameters only, which go-cose does not offer.
package keys
