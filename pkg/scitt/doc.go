// Package scitt implements the three COSE objects of SCITT: Signed
// Statements, Receipts and Transparent Statements.
//
// # Signed Statements
//
// A Signed Statement is a COSE_Sign1 message (RFC 9052, tag 18) whose
// protected header carries the CWT claims iss and sub (RFC 9597 label 15;
// RFC 9943 §6). By default Trustfabric signs a COSE Hash Envelope (RFC 9995):
// the payload is the SHA-256 digest of the preimage, label 258 names the hash
// algorithm, 259 the preimage's media type and 260 an optional location.
// [SignStatement] builds one; [ParseStatement] parses any Signed Statement
// strictly and [Statement.Verify] checks it.
//
// # Receipts
//
// A Receipt (RFC 9942) proves that a statement is in a Transparency Service's
// log. Two verifiable data structures are implemented: RFC9162_SHA256 (vds
// 1) and CCF_LEDGER_SHA256 (vds 2, Microsoft's scitt-ccf-ledger and Azure
// Code Transparency; ccf.go); any other vds is rejected with
// [ErrUnsupportedVDS]. For vds 1 the bytes a log entry stands for are a
// per-service convention ([LeafConvention]): Trustfabric's own log and the
// IETF SCITT example vectors use entry = SHA-256(statement with unprotected
// header {}) and leaf = SHA-256(0x00 ‖ entry) ([LeafIETF]); transmute hashes
// the statement directly ([LeafDirect]). Trustfabric receipts name theirs
// ([LabelLeafConvention]) and [LeafAuto] follows what a receipt names.
//
// # Transparent Statements
//
// A Transparent Statement is a Signed Statement with receipts in its
// unprotected header under label 394 (RFC 9943 §7). [AddReceipt],
// [Receipts] and [RemoveReceipts] edit that header without re-encoding any
// signed byte.
//
// # Keys
//
// Keys are read from JWK, JWK Set, COSE_Key, COSE_KeySet or PEM
// ([ParsePublicKeys], [ParsePrivateKey]). Issuer keys are identified by their
// RFC 7638 JWK thumbprint, service keys by their RFC 9679 COSE key thumbprint;
// a [keys.Set] matches a kid against either, or against the kid a key was
// published under.
//
// # Errors
//
// Verification returns a [Result] listing each check. Failures wrap one of the
// exported sentinels ([ErrMalformed], [ErrBadSignature], …) so callers branch
// with [errors.Is].
package scitt
