package credential

import (
	"context"
	"fmt"
	"time"

	"github.com/trustfabric/trustfabric/pkg/keys"
	"github.com/trustfabric/trustfabric/pkg/policy"
	"github.com/trustfabric/trustfabric/pkg/scitt"
)

// Content types of the statement's preimage (label 259).
const (
	ContentTypeSDJWT = "application/dc+sd-jwt"
	ContentTypeSDCWT = "application/sd-cwt"
)

// ArtifactType is the artifactType of the referrer that carries a
// credential's Transparent Statement on its image (credential issue
// --attach): not the gate's statement type, so the gate does not take it
// for build evidence. Its layers are the statement and the credential's
// issuer-signed part (no disclosures: nothing selectively disclosable is
// revealed by attaching it).
const ArtifactType = "application/vnd.trustfabric.credential-statement+cose"

// CheckReceipt names the anchoring check of VerifyAnchor.
const CheckReceipt = "receipt"

// Statement returns the Signed Statement that anchors a credential in a
// Transparency Service (issue 15 item 4): a hash envelope over the
// issuer-signed part of the credential, the part every presentation carries
// unchanged (the SD-JWT's Issuer-signed JWT; the SD-CWT without sd_claims),
// signed with the credential's issuer key, iss = the credential's iss,
// sub = the artifact it is about, preimage content type contentType.
func Statement(ctx context.Context, key *keys.PrivateKey, issuer, subject, contentType string, issuerSigned []byte) ([]byte, error) {
	return scitt.SignStatement(ctx, key, scitt.Claims{Issuer: issuer, Subject: subject, IssuedAt: time.Now()}, issuerSigned, scitt.WithContentType(contentType))
}

// VerifyAnchor checks that transparent (a Transparent Statement) anchors
// the verified presentation v: a receipt verifies under serviceKeys, the
// statement is signed by one of issuerKeys with iss = v.Issuer, and it
// covers exactly the presented credential's issuer-signed part.
func VerifyAnchor(transparent []byte, v *Verified, serviceKeys, issuerKeys keys.Set) error {
	if len(v.issuerSigned) == 0 {
		return fmt.Errorf("%s: the verified presentation carries no issuer-signed part", CheckReceipt)
	}
	res, err := scitt.VerifyTransparentStatement(transparent, serviceKeys, scitt.LeafIETF, issuerKeys, scitt.WithPreimage(v.issuerSigned))
	if err != nil {
		return fmt.Errorf("%s: %w", CheckReceipt, err)
	}
	if err := res.Err(); err != nil {
		return fmt.Errorf("%s: %w", CheckReceipt, err)
	}
	st, err := scitt.ParseStatement(transparent)
	if err != nil {
		return fmt.Errorf("%s: %w", CheckReceipt, err)
	}
	if st.PreimageContentType != ContentTypeSDJWT && st.PreimageContentType != ContentTypeSDCWT {
		return fmt.Errorf("%s: the statement is about %q, not a credential", CheckReceipt, st.PreimageContentType)
	}
	if st.Issuer != v.Issuer {
		return fmt.Errorf("%s: the statement's iss %q is not the credential's %q", CheckReceipt, st.Issuer, v.Issuer)
	}
	return nil
}

// Subject is the sub of a credential's statement: the artifact id of the
// image the decision is about, oci://<registry>/<repository>@<digest>.
func Subject(d *policy.Decision) string {
	return "oci://" + artifactName(d.Image) + "@" + d.Digest
}
