package provenance

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"strings"

	"github.com/trustfabric/trustfabric/internal/jsonlimit"
)

// Well-known payload content types of SCITT Signed Statements besides in-toto.
const (
	ContentTypeJSON      = "application/json"
	ContentTypeText      = "text/plain"
	ContentTypeOctets    = "application/octet-stream"
	ContentTypeCycloneDX = "application/vnd.cyclonedx+json"
	ContentTypeSPDX      = "application/spdx+json"
	ContentTypeOpenVEX   = "application/openvex+json"
)

// PayloadKind says how strictly a payload is checked against its content type.
type PayloadKind int

// Payload kinds.
const (
	// KindOpaque payloads are checked by digest only (the statement signs
	// their hash); text/plain, application/octet-stream, anything not JSON.
	KindOpaque PayloadKind = iota
	// KindJSON payloads (application/json and every +json type that is not
	// in-toto) must be one well-formed JSON value within [MaxDepth].
	KindJSON
	// KindInToto payloads (application/vnd.in-toto+json, or a DSSE envelope
	// of one) must be in-toto statements ([ParseStatement]).
	KindInToto
)

func (k PayloadKind) String() string {
	switch k {
	case KindInToto:
		return "in-toto"
	case KindJSON:
		return "json"
	}
	return "opaque"
}

// ErrContentType is wrapped when a payload is not what its content type says
// or the content type itself is malformed.
var ErrContentType = errors.New("payload does not match its content type")

// Payload is the preimage of a Signed Statement, classified by the content
// type the statement declares.
type Payload struct {
	Raw []byte
	// MediaType is the declared content type reduced to its lowercase
	// type/subtype (parameters dropped; CoAP content formats mapped), the
	// form an OCI descriptor carries.
	MediaType string
	Kind      PayloadKind
	// Statement is the parsed in-toto statement of a KindInToto payload.
	Statement *Statement
}

// PredicateType is the in-toto predicate type, "" for other payloads.
func (p *Payload) PredicateType() string {
	if p.Statement == nil {
		return ""
	}
	return p.Statement.PredicateType
}

// coapFormats maps the CoAP content formats (RFC 7252 §12.3) a COSE content
// type may be given as to media types.
var coapFormats = map[string]string{
	"coap:0": ContentTypeText, "coap:42": ContentTypeOctets, "coap:50": ContentTypeJSON,
	"coap:60": "application/cbor", "coap:110": "application/senml+json",
}

// NormalizeContentType reduces a declared content type to its lowercase
// type/subtype. A CoAP content format ("coap:N", as pkg/scitt reports an
// integer label 3 or 259) maps to its media type, an unknown one to
// application/octet-stream. Errors wrap [ErrContentType].
func NormalizeContentType(ct string) (string, error) {
	if strings.HasPrefix(ct, "coap:") {
		if mt, ok := coapFormats[ct]; ok {
			return mt, nil
		}
		return ContentTypeOctets, nil
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil || !strings.Contains(mt, "/") || len(mt) > 255 {
		return "", fmt.Errorf("%w: %q is not a media type like application/json", ErrContentType, truncate(ct))
	}
	return mt, nil
}

// KindOf classifies a normalized media type.
func KindOf(mediaType string) PayloadKind {
	switch {
	case mediaType == MediaType || mediaType == DSSEMediaType:
		return KindInToto
	case mediaType == ContentTypeJSON || strings.HasSuffix(mediaType, "+json"):
		return KindJSON
	}
	return KindOpaque
}

// ParsePayload checks b against the content type its statement declares: an
// in-toto statement strictly ([ParseStatement]), JSON types as one JSON
// value within the size and depth limits, other types not at all (the
// statement's digest covers them) beyond the size limit. An empty content
// type (a statement that declares none) is taken as in-toto when b parses as
// an in-toto statement, else as application/octet-stream. Errors wrap
// [ErrContentType], [ErrMalformed] or [ErrTooLarge].
func ParsePayload(contentType string, b []byte) (*Payload, error) {
	if len(b) > MaxStatementSize {
		return nil, fmt.Errorf("%w: payload of %d bytes, the limit is %d", ErrTooLarge, len(b), MaxStatementSize)
	}
	if contentType == "" {
		if st, err := ParseStatement(b); err == nil {
			return &Payload{Raw: b, MediaType: st.MediaType, Kind: KindInToto, Statement: st}, nil
		}
		return &Payload{Raw: b, MediaType: ContentTypeOctets, Kind: KindOpaque}, nil
	}
	mt, err := NormalizeContentType(contentType)
	if err != nil {
		return nil, err
	}
	p := &Payload{Raw: b, MediaType: mt, Kind: KindOf(mt)}
	switch p.Kind {
	case KindInToto:
		st, err := ParseStatement(b)
		if err != nil {
			return nil, fmt.Errorf("content type %s: %w", mt, err)
		}
		if st.MediaType != mt {
			return nil, fmt.Errorf("%w: the content type is %s but the payload is a %s", ErrContentType, mt, st.MediaType)
		}
		p.Statement = st
	case KindJSON:
		if err := checkJSON(b); err != nil {
			return nil, fmt.Errorf("%w: content type %s: %w", ErrContentType, mt, err)
		}
	}
	return p, nil
}

// checkJSON accepts exactly one JSON value nested at most MaxDepth deep.
func checkJSON(b []byte) error {
	if err := jsonlimit.CheckDepth(b, MaxDepth); err != nil {
		return err
	}
	d := json.NewDecoder(bytes.NewReader(b))
	var v json.RawMessage
	if err := d.Decode(&v); err != nil {
		return fmt.Errorf("not JSON: %w", err)
	}
	if len(bytes.TrimLeft(b[d.InputOffset():], " \t\r\n")) > 0 {
		return errors.New("trailing data after the JSON value")
	}
	return nil
}

func truncate(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}

// FileExtension is a file name extension for a payload of a normalized media
// type, for the OCI layer title: .intoto.json, .dsse.json, .cdx.json,
// .spdx.json, .openvex.json, .json, .txt or .bin.
func FileExtension(mediaType string) string {
	switch mediaType {
	case MediaType:
		return ".intoto.json"
	case DSSEMediaType:
		return ".dsse.json"
	case ContentTypeCycloneDX:
		return ".cdx.json"
	case ContentTypeSPDX:
		return ".spdx.json"
	case ContentTypeOpenVEX:
		return ".openvex.json"
	case "application/cbor":
		return ".cbor"
	}
	switch {
	case KindOf(mediaType) == KindJSON:
		return ".json"
	case strings.HasPrefix(mediaType, "text/"):
		return ".txt"
	}
	return ".bin"
}
