package policy_test

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/veraison/go-cose"

	"github.com/trustfabric/trustfabric/pkg/keys"
	"github.com/trustfabric/trustfabric/pkg/oci"
	"github.com/trustfabric/trustfabric/pkg/oci/ocitest"
	"github.com/trustfabric/trustfabric/pkg/policy"
	"github.com/trustfabric/trustfabric/pkg/scitt"
)

// The deployment gate: a policy pins a Transparency Service key and a
// static issuer key, and allows an image when a statement of that issuer,
// registered with that service, about that image, is attached to it. An
// image without such a statement is denied, with the reason.
func ExampleVerifier_Verify() {
	ctx := context.Background()
	reg := ocitest.NewOlareg(nil) // an in-process OCI registry
	defer reg.Close()
	issuer, service := newKey(), newKey()

	doc := fmt.Sprintf(`apiVersion: trustfabric.dev/v1alpha1
kind: VerificationPolicy
transparencyServices:
  - issuer: https://ts.example.org
    inlineKeys: ['%s']
issuers:
  - issuer: https://ci.example.org/release
    inlineKeys: ['%s']
workloads:
  - exact: https://ci.example.org/release
    selfReportedProvenance: true
provenance:
  predicateTypes: [https://slsa.dev/provenance/v1]
`, jwk(service), jwk(issuer))
	p, err := policy.Parse([]byte(doc), ".")
	if err != nil {
		panic(err)
	}

	client, err := oci.New()
	if err != nil {
		panic(err)
	}
	good := pushImage(reg.Host + "/acme/widgets:v1")
	attach(ctx, client, good, issuer, service)
	bare := pushImage(reg.Host + "/acme/widgets:v2")

	v, err := policy.NewVerifier(ctx, p, policy.WithOCIClient(client), policy.WithOffline())
	if err != nil {
		panic(err)
	}
	for _, image := range []string{good, bare} {
		d, err := v.Verify(ctx, image)
		if err != nil {
			panic(err)
		}
		fmt.Println("allowed:", d.Allowed)
		for _, c := range d.Candidates {
			for _, ch := range c.Checks {
				fmt.Println("  ", ch.Name, ch.OK)
			}
		}
		for _, r := range d.Reasons {
			fmt.Println("  ", strings.ReplaceAll(r, image, "IMAGE"))
		}
	}
	// Output:
	// allowed: true
	//    referrer true
	//    statement true
	//    subject true
	//    receipts true
	//    signature true
	//    preimage true
	//    payload true
	//    identity true
	//    provenance true
	// allowed: false
	//    IMAGE: no SCITT statement is attached to the image
}

func newKey() *keys.PrivateKey {
	k, err := keys.Generate(cose.AlgorithmES256)
	if err != nil {
		panic(err)
	}
	return k
}

func jwk(k *keys.PrivateKey) string {
	b, err := k.Public().MarshalJWK()
	if err != nil {
		panic(err)
	}
	return string(b)
}

// pushImage pushes a small random image and returns repository@digest.
func pushImage(ref string) string {
	tag, err := name.NewTag(ref)
	if err != nil {
		panic(err)
	}
	img, err := random.Image(256, 1)
	if err != nil {
		panic(err)
	}
	if err := remote.Write(tag, img); err != nil {
		panic(err)
	}
	d, err := img.Digest()
	if err != nil {
		panic(err)
	}
	return tag.Context().Name() + "@" + d.String()
}

// attach signs SLSA provenance about image, registers it in a one-entry log
// of service and attaches the transparent statement to the image.
func attach(ctx context.Context, c *oci.Client, image string, issuer, service *keys.PrivateKey) {
	repo, digest, _ := strings.Cut(image, "@")
	preimage := []byte(`{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"` + repo + `","digest":{"sha256":"` + strings.TrimPrefix(digest, "sha256:") + `"}}],` +
		`"predicateType":"https://slsa.dev/provenance/v1","predicate":{"buildDefinition":{"buildType":"https://example.org/build","externalParameters":{}},"runDetails":{"builder":{"id":"https://ci.example.org/release"}}}}`)
	now := time.Now()
	stmt, err := scitt.SignStatement(ctx, issuer, scitt.Claims{Issuer: "https://ci.example.org/release", Subject: "oci://" + image, IssuedAt: now}, preimage)
	if err != nil {
		panic(err)
	}
	receipt, err := scitt.IssueReceipt(ctx, service, scitt.ReceiptClaims{Issuer: "https://ts.example.org", IssuedAt: now},
		scitt.InclusionProof{TreeSize: 1}, scitt.LeafHash(stmt, scitt.LeafIETF))
	if err != nil {
		panic(err)
	}
	transparent, err := scitt.AddReceipt(stmt, receipt)
	if err != nil {
		panic(err)
	}
	if _, err := c.Attach(ctx, image, oci.Attachment{Statement: transparent, Preimage: preimage}); err != nil {
		panic(err)
	}
}
