package scitt

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/veraison/go-cose"

	"github.com/trustfabric/trustfabric/internal/cosewire"
	"github.com/trustfabric/trustfabric/pkg/keys"
)

// MaxStatementSize bounds the Signed and Transparent Statements this package
// parses. Registration policies usually set a lower limit (1 MiB by default).
const MaxStatementSize = 4 << 20

// maxReceiptsPerStatement bounds the receipts a Transparent Statement carries.
const maxReceiptsPerStatement = 64

// Claims are the CWT claims of a Signed Statement (RFC 9943 §6).
type Claims struct {
	// Issuer is the iss claim: who makes the statement (a workload
	// identifier URI for CI jobs).
	Issuer string
	// Subject is the sub claim: the artifact the statement is about, e.g.
	// "oci://registry/repo@sha256:…" or "sha256:…".
	Subject string
	// IssuedAt is the iat claim; the zero time omits it.
	IssuedAt time.Time
}

type signOptions struct {
	contentType string
	location    string
	embedded    bool
	wit         string
}

// SignOption configures [SignStatement].
type SignOption func(*signOptions) error

// WithContentType sets the media type of the payload: label 259 (preimage
// content type) in a hash envelope, label 3 in an embedded statement.
// Default: [DetectContentType] of the payload.
func WithContentType(ct string) SignOption {
	return func(o *signOptions) error {
		if ct == "" {
			return errors.New("content type must not be empty")
		}
		o.contentType = ct
		return nil
	}
}

// WithLocation sets label 260, the payload location URI (hash envelope only).
// Default: none.
func WithLocation(uri string) SignOption {
	return func(o *signOptions) error { o.location = uri; return nil }
}

// WithEmbeddedPayload signs the payload inline with label 3, instead of the
// default hash envelope.
func WithEmbeddedPayload() SignOption {
	return func(o *signOptions) error { o.embedded = true; return nil }
}

// WithWIT puts a WIMSE Workload Identity Token (compact JWS) in the protected
// header under the text label "wit". Default: none.
func WithWIT(wit string) SignOption {
	return func(o *signOptions) error {
		if wit == "" {
			return errors.New("WIT must not be empty")
		}
		o.wit = wit
		return nil
	}
}

// DetectContentType returns the in-toto media type when payload is an
// in-toto Statement (JSON with an in-toto _type), else
// application/octet-stream.
func DetectContentType(payload []byte) string {
	var probe struct {
		Type string `json:"_type"`
	}
	if json.Unmarshal(payload, &probe) == nil && bytes.HasPrefix([]byte(probe.Type), []byte("https://in-toto.io/Statement/")) {
		return MediaTypeInToto
	}
	return MediaTypeOctets
}

// SignStatement signs payload as a Signed Statement. By default it is a COSE
// Hash Envelope (RFC 9995): the payload is SHA-256(payload) and the protected
// header is {1 alg, 4 kid, 15 {1 iss, 2 sub, 6 iat}, 258 -16, 259 type,
// 260 location}. The unprotected header is {}.
func SignStatement(ctx context.Context, key *keys.PrivateKey, claims Claims, payload []byte, opts ...SignOption) ([]byte, error) {
	var o signOptions
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, fmt.Errorf("sign statement: %w", err)
		}
	}
	if claims.Issuer == "" || claims.Subject == "" {
		return nil, fmt.Errorf("sign statement: %w: issuer and subject are required", ErrMissingClaims)
	}
	if payload == nil {
		return nil, fmt.Errorf("sign statement: %w: no payload", ErrPayloadMismatch)
	}
	if o.contentType == "" {
		o.contentType = DetectContentType(payload)
	}
	cwt := map[int64]any{claimIss: claims.Issuer, claimSub: claims.Subject}
	if !claims.IssuedAt.IsZero() {
		cwt[claimIat] = claims.IssuedAt.Unix()
	}
	hdr := map[any]any{
		int64(LabelAlg):       int64(key.Alg),
		int64(LabelKID):       key.KID,
		int64(LabelCWTClaims): cwt,
	}
	body := payload
	if o.embedded {
		if o.location != "" {
			return nil, errors.New("sign statement: a location (260) needs a hash envelope, not an embedded payload")
		}
		hdr[int64(LabelContentType)] = o.contentType
	} else {
		sum := sha256.Sum256(payload)
		body = sum[:]
		hdr[int64(LabelPayloadHashAlg)] = int64(AlgSHA256)
		hdr[int64(LabelPreimageContentType)] = o.contentType
		if o.location != "" {
			hdr[int64(LabelPayloadLocation)] = o.location
		}
	}
	if o.wit != "" {
		hdr[LabelWIT] = o.wit
	}
	return sign1(ctx, key, hdr, nil, body)
}

// sign1 encodes and signs a COSE_Sign1 carrying payload; unprotected nil
// means {}.
func sign1(ctx context.Context, key *keys.PrivateKey, hdr map[any]any, unprotected []byte, payload []byte) ([]byte, error) {
	protected, sig, err := signProtected(ctx, key, hdr, payload)
	if err != nil {
		return nil, err
	}
	if unprotected == nil {
		unprotected = cosewire.EmptyMap
	}
	return cosewire.Build(protected, unprotected, payload, sig), nil
}

// signProtected encodes the protected header and signs it with payload.
func signProtected(ctx context.Context, key *keys.PrivateKey, hdr map[any]any, payload []byte) (protected, sig []byte, err error) {
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	if key == nil || key.Signer == nil {
		return nil, nil, errors.New("sign: no key")
	}
	signer, err := key.COSESigner()
	if err != nil {
		return nil, nil, fmt.Errorf("sign: %w", err)
	}
	protected, err = cosewire.Enc.Marshal(hdr)
	if err != nil {
		return nil, nil, fmt.Errorf("sign: encode protected header: %w", err)
	}
	sig, err = signer.Sign(rand.Reader, cosewire.SigStructure(protected, payload))
	if err != nil {
		return nil, nil, fmt.Errorf("sign: %w", err)
	}
	return protected, sig, nil
}

// Statement is a parsed Signed Statement (or Transparent Statement). Its
// fields are read-only views of the received bytes.
type Statement struct {
	// Raw is the statement exactly as received.
	Raw []byte
	// Alg is the signature algorithm (label 1); 0 when absent.
	Alg cose.Algorithm
	// KID is the kid (label 4); nil when absent.
	KID []byte
	// Issuer, Subject and IssuedAt are the CWT claims (label 15); IssuedAt
	// is zero when absent.
	Issuer, Subject string
	IssuedAt        time.Time
	// ContentType is label 3; PreimageContentType 259; Location 260; WIT
	// the "wit" text label.
	ContentType, PreimageContentType, Location, WIT string
	// PayloadHashAlg is label 258; 0 when the statement is not a hash
	// envelope.
	PayloadHashAlg cose.Algorithm
	// Payload is the payload (the digest, in a hash envelope); nil when
	// detached.
	Payload []byte
	// Receipts holds the encoded receipts found under label 394.
	Receipts [][]byte

	msg        *cosewire.Sign1
	hasCWT     bool
	placeErr   error
	algErr     error
	hasLabel3  bool
	registered []byte
}

// ParseStatement parses a Signed or Transparent Statement strictly: one CBOR
// item, tag 18, a four-element array, a bstr-wrapped protected map, no
// duplicate map keys, within [MaxStatementSize] and the nesting limits, and
// no trailing bytes. Semantic rules (algorithm, claims, header placement) are
// checked by [Statement.Verify].
func ParseStatement(b []byte) (*Statement, error) {
	m, err := cosewire.Parse(b, MaxStatementSize)
	if err != nil {
		return nil, fmt.Errorf("parse statement: %w", err)
	}
	s, err := statementFrom(m)
	if err != nil {
		return nil, fmt.Errorf("parse statement: %w", err)
	}
	return s, nil
}

func statementFrom(m *cosewire.Sign1) (*Statement, error) {
	s := &Statement{Raw: m.Raw, msg: m, Payload: m.Payload}
	p, err := decodeHeader(m.Protected, "protected")
	if err != nil {
		return nil, err
	}
	u, err := decodeHeader(m.Unprotected, "unprotected")
	if err != nil {
		return nil, err
	}
	if err := checkCrit(p, u, statementCritLabels); err != nil {
		return nil, err
	}
	if alg, ok, err := p.int(LabelAlg, "alg"); err != nil {
		if cosewire.Major(p.raw(LabelAlg)) != 3 {
			return nil, err
		}
		s.algErr = fmt.Errorf("%w: text algorithm names are not supported", ErrUnsupportedAlgorithm)
	} else if ok {
		s.Alg = cose.Algorithm(alg)
	}
	if s.KID, _, err = p.bstr(LabelKID, "kid"); err != nil {
		return nil, err
	}
	c, err := p.cwt()
	if err != nil {
		return nil, err
	}
	s.hasCWT, s.Issuer, s.Subject, s.IssuedAt = c.present, c.iss, c.sub, c.iat
	if s.ContentType, s.hasLabel3, err = p.tstrOrUint(LabelContentType, "content type"); err != nil {
		return nil, err
	}
	if hashAlg, ok, err := p.int(LabelPayloadHashAlg, "payload hash alg"); err != nil {
		return nil, err
	} else if ok {
		s.PayloadHashAlg = cose.Algorithm(hashAlg)
	}
	if s.PreimageContentType, _, err = p.tstrOrUint(LabelPreimageContentType, "preimage content type"); err != nil {
		return nil, err
	}
	if s.Location, _, err = p.tstr(LabelPayloadLocation, "payload location"); err != nil {
		return nil, err
	}
	if s.WIT, _, err = p.tstr(LabelWIT, "wit"); err != nil {
		return nil, err
	}

	// RFC 9995 §2 placement rules.
	switch {
	case u.has(LabelPayloadHashAlg):
		s.placeErr = fmt.Errorf("%w: payload hash alg (258) must be in the protected header", ErrHeaderPlacement)
	case u.has(LabelPreimageContentType) || u.has(LabelPayloadLocation):
		s.placeErr = fmt.Errorf("%w: preimage content type (259) and payload location (260) must not be in the unprotected header", ErrHeaderPlacement)
	case s.PayloadHashAlg != 0 && (s.hasLabel3 || u.has(LabelContentType)):
		s.placeErr = fmt.Errorf("%w: a hash envelope (258) must not carry content type (3)", ErrHeaderPlacement)
	case u.has(LabelCWTClaims) && !s.hasCWT:
		s.placeErr = fmt.Errorf("%w: CWT claims (15) must be in the protected header", ErrHeaderPlacement)
	}
	if raw := u.raw(LabelReceipts); raw != nil {
		if s.Receipts, err = decodeReceiptList(raw); err != nil {
			return nil, err
		}
	}
	return s, nil
}

func decodeReceiptList(raw []byte) ([][]byte, error) {
	list, err := cosewire.Array(raw)
	if err != nil {
		return nil, fmt.Errorf("receipts (394) must be an array of byte strings: %w", err)
	}
	if len(list) > maxReceiptsPerStatement {
		return nil, fmt.Errorf("%w: %d receipts exceed the limit of %d", ErrMalformed, len(list), maxReceiptsPerStatement)
	}
	out := make([][]byte, 0, len(list))
	for i, item := range list {
		b, err := cosewire.Bytes(item)
		if err != nil {
			return nil, fmt.Errorf("receipt %d under 394 is not a byte string: %w", i, err)
		}
		out = append(out, b)
	}
	return out, nil
}

// IsHashEnvelope reports whether the statement is a COSE Hash Envelope.
func (s *Statement) IsHashEnvelope() bool { return s.PayloadHashAlg != 0 }

// Registered returns the statement as it is registered: the same bytes with
// the unprotected header replaced by {} (RFC 9943 §5.1.1), spliced in
// without re-encoding anything else.
func (s *Statement) Registered() []byte {
	if s.registered == nil {
		s.registered = s.msg.Stripped()
	}
	return s.registered
}

// EntryHash returns the log entry of the statement (design §2.2):
// SHA-256 of its bytes with the unprotected header replaced by {}. The entry
// id is the lowercase hex of it.
func (s *Statement) EntryHash() [32]byte { return sha256.Sum256(s.Registered()) }

// EntryHash parses statement and returns its log entry (see
// [Statement.EntryHash]).
func EntryHash(statement []byte) ([32]byte, error) {
	s, err := ParseStatement(statement)
	if err != nil {
		return [32]byte{}, err
	}
	return s.EntryHash(), nil
}

type verifyOptions struct {
	preimage    []byte
	hasPreimage bool
}

// VerifyOption configures [Statement.Verify].
type VerifyOption func(*verifyOptions) error

// WithPreimage makes Verify also check that the statement covers preimage:
// its digest for a hash envelope, the payload itself otherwise. It also
// supplies a detached payload. Default: the preimage is not checked.
func WithPreimage(preimage []byte) VerifyOption {
	return func(o *verifyOptions) error { o.preimage, o.hasPreimage = preimage, true; return nil }
}

// Check names reported by [Statement.Verify].
const (
	CheckStatementAlgorithm = "statement.algorithm"
	CheckStatementHeaders   = "statement.headers"
	CheckStatementPayload   = "statement.payload"
	CheckStatementSignature = "statement.signature"
	CheckStatementPreimage  = "statement.preimage"
)

// Verify checks the statement with the given keys: the algorithm allow-list,
// the required claims (15 with iss and sub) and RFC 9995 placement rules,
// the payload length of a hash envelope, the signature over the protected
// bytes as received, and, with [WithPreimage], the preimage digest. The
// returned error, when not nil, wraps one of the package sentinels and is
// also recorded in the result.
func (s *Statement) Verify(ks keys.Set, opts ...VerifyOption) (*Result, error) {
	var o verifyOptions
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return &Result{}, fmt.Errorf("verify options: %w", err)
		}
	}
	r := &Result{Checks: make([]Check, 0, 5)}
	switch {
	case s.algErr != nil:
		return r.fail(CheckStatementAlgorithm, s.algErr)
	case s.Alg == 0:
		return r.fail(CheckStatementAlgorithm, fmt.Errorf("%w: no alg (1) in the protected header", ErrUnsupportedAlgorithm))
	case !keys.StatementAllowed(s.Alg):
		return r.fail(CheckStatementAlgorithm, fmt.Errorf("%w: %v (allowed: ES256, ES384, ES512, PS256, EdDSA)", ErrUnsupportedAlgorithm, s.Alg))
	}
	r.pass(CheckStatementAlgorithm)

	switch {
	case !s.hasCWT:
		return r.fail(CheckStatementHeaders, fmt.Errorf("%w: no CWT claims (15) in the protected header", ErrMissingClaims))
	case s.Issuer == "":
		return r.fail(CheckStatementHeaders, fmt.Errorf("%w: CWT claims have no iss (1)", ErrMissingClaims))
	case s.Subject == "" && s.PayloadHashAlg != 0:
		// RFC 9943 requires sub; statements from older issuers (the
		// did:x509 ones among them) omit it, so only our hash envelopes are
		// held to it strictly.
		return r.fail(CheckStatementHeaders, fmt.Errorf("%w: CWT claims have no sub (2)", ErrMissingClaims))
	case s.placeErr != nil:
		return r.fail(CheckStatementHeaders, s.placeErr)
	}
	r.pass(CheckStatementHeaders)

	payload := s.Payload
	if payload == nil {
		switch {
		case s.IsHashEnvelope():
			return r.fail(CheckStatementPayload, fmt.Errorf("%w: the hash envelope's payload (the digest) is detached", ErrPayloadMismatch))
		case !o.hasPreimage:
			return r.fail(CheckStatementPayload, fmt.Errorf("%w: the payload is detached; supply it", ErrPayloadMismatch))
		}
		payload = o.preimage
	}
	if s.IsHashEnvelope() {
		size := hashAlgSize(s.PayloadHashAlg)
		if size == 0 {
			return r.fail(CheckStatementPayload, fmt.Errorf("%w: payload hash algorithm %d (want -16 SHA-256, -43 SHA-384 or -44 SHA-512)", ErrUnsupportedAlgorithm, s.PayloadHashAlg))
		}
		if len(payload) != size {
			return r.fail(CheckStatementPayload, fmt.Errorf("%w: hash envelope payload is %d bytes, want %d", ErrPayloadMismatch, len(payload), size))
		}
	}
	r.pass(CheckStatementPayload)

	if _, err := ks.Verify(s.KID, s.Alg, cosewire.SigStructure(s.msg.Protected, payload), s.msg.Signature); err != nil {
		if errors.Is(err, ErrBadSignature) && len(s.KID) > 0 && !ks.Names(s.KID) {
			err = fmt.Errorf("%w: no given key has kid %x, and none verifies the statement: %w", ErrKeyNotFound, s.KID, err)
		}
		return r.fail(CheckStatementSignature, err)
	}
	r.pass(CheckStatementSignature)

	if o.hasPreimage && s.Payload != nil {
		if err := s.checkPreimage(o.preimage); err != nil {
			return r.fail(CheckStatementPreimage, err)
		}
		r.pass(CheckStatementPreimage)
	}
	return r, nil
}

// CheckPreimage reports whether the statement covers preimage: its digest
// under the envelope's hash algorithm, or the embedded payload itself. The
// error wraps [ErrPayloadMismatch].
func (s *Statement) CheckPreimage(preimage []byte) error { return s.checkPreimage(preimage) }

func (s *Statement) checkPreimage(preimage []byte) error {
	if !s.IsHashEnvelope() {
		if !bytes.Equal(s.Payload, preimage) {
			return fmt.Errorf("%w: the payload differs from the given preimage", ErrPayloadMismatch)
		}
		return nil
	}
	var sum []byte
	switch s.PayloadHashAlg {
	case -16:
		d := sha256.Sum256(preimage)
		sum = d[:]
	case -43:
		d := sha512.Sum384(preimage)
		sum = d[:]
	case -44:
		d := sha512.Sum512(preimage)
		sum = d[:]
	}
	if !bytes.Equal(sum, s.Payload) {
		return fmt.Errorf("%w: the digest of the preimage is not the statement's payload", ErrPayloadMismatch)
	}
	return nil
}
