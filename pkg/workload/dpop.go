package workload

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/trustfabric/trustfabric/pkg/keys"
	"github.com/trustfabric/trustfabric/pkg/wimse"
)

// NewDPoPProof signs a DPoP proof for a POST to htu with key (RFC 9449 §4.2).
func NewDPoPProof(key *keys.PrivateKey, htu string) (string, error) {
	pub := jose.JSONWebKey{Key: key.Signer.Public()}
	opts := (&jose.SignerOptions{EmbedJWK: false}).WithType(wimse.TypeDPoP).WithHeader("jwk", pub)
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: key.JOSEAlgorithm(), Key: key.Signer}, opts)
	if err != nil {
		return "", fmt.Errorf("DPoP signer: %w", err)
	}
	var jti [16]byte
	if _, err := rand.Read(jti[:]); err != nil {
		return "", fmt.Errorf("DPoP jti: %w", err)
	}
	return jwt.Signed(s).Claims(map[string]any{
		"jti": base64.RawURLEncoding.EncodeToString(jti[:]), "htm": "POST", "htu": htu, "iat": time.Now().Unix(),
	}).Serialize()
}
