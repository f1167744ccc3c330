package wimse

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
)

// Unverified is a compact JWS decoded without any check of its signature,
// for display (`trustfabric inspect`). Never base a decision on it.
type Unverified struct {
	Header map[string]any `json:"header"`
	Claims map[string]any `json:"claims"`
	// SignatureSize is the length of the decoded signature.
	SignatureSize int `json:"signature_size"`
}

// DecodeUnverified splits and decodes a compact JWS (a WIT, WPT or any JWT)
// within MaxTokenSize, without verifying it.
func DecodeUnverified(token string) (*Unverified, error) {
	token = strings.TrimSpace(token)
	if len(token) > MaxTokenSize {
		return nil, fmt.Errorf("%w: token of %d bytes exceeds %d", ErrMalformed, len(token), MaxTokenSize)
	}
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return nil, fmt.Errorf("%w: a compact JWS has 3 dot-separated parts, this has %d", ErrMalformed, len(parts))
	}
	u := &Unverified{}
	for i, dst := range []*map[string]any{&u.Header, &u.Claims} {
		b, err := base64.RawURLEncoding.DecodeString(parts[i])
		if err != nil {
			return nil, fmt.Errorf("%w: part %d is not base64url: %w", ErrMalformed, i+1, err)
		}
		if err := json.Unmarshal(b, dst); err != nil {
			return nil, fmt.Errorf("%w: part %d is not a JSON object: %w", ErrMalformed, i+1, err)
		}
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return nil, fmt.Errorf("%w: signature is not base64url: %w", ErrMalformed, err)
	}
	u.SignatureSize = len(sig)
	return u, nil
}

// Description is what `trustfabric inspect` shows of a compact JWS: its kind
// (wit, wpt, or jwt for any other token, e.g. a CI token), header and claims.
// Nothing is verified.
type Description struct {
	Type          string         `json:"type"`
	Verified      bool           `json:"verified"`
	Header        map[string]any `json:"header"`
	Claims        map[string]any `json:"claims"`
	SignatureSize int            `json:"signature_size"`
}

// Describe decodes a compact JWS without verifying it and names its kind by
// its typ header.
func Describe(token string) (*Description, error) {
	u, err := DecodeUnverified(token)
	if err != nil {
		return nil, err
	}
	kind := "jwt"
	switch u.Header["typ"] {
	case TypeWIT, "application/" + TypeWIT:
		kind = "wit"
	case TypeWPT, "application/" + TypeWPT:
		kind = "wpt"
	}
	return &Description{Type: kind, Header: u.Header, Claims: u.Claims, SignatureSize: u.SignatureSize}, nil
}
