package oci_test

import (
	"bytes"
	"context"
	"fmt"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/veraison/go-cose"

	"github.com/trustfabric/trustfabric/pkg/keys"
	"github.com/trustfabric/trustfabric/pkg/oci"
	"github.com/trustfabric/trustfabric/pkg/oci/ocitest"
	"github.com/trustfabric/trustfabric/pkg/scitt"
)

// A transparent statement and its in-toto preimage are attached to an image
// as an OCI 1.1 referrer, then discovered again from the image's tag, with
// the facts the referrer's annotations carry. The registry is olareg,
// in-process.
func ExampleClient_Attach() {
	ctx := context.Background()
	reg := ocitest.NewOlareg(nil)
	defer reg.Close()
	image := pushImage(reg.Host + "/acme/widgets:v1")

	preimage := []byte(`{"_type":"https://in-toto.io/Statement/v1","subject":[],"predicateType":"https://slsa.dev/provenance/v1","predicate":{}}`)
	statement := transparentStatement(ctx, preimage, "oci://"+image)

	c, err := oci.New() // loopback registries may use plain HTTP
	if err != nil {
		panic(err)
	}
	created := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	done, err := c.Attach(ctx, image, oci.Attachment{
		Statement: statement, Preimage: preimage,
		Annotations: oci.Annotations{Issuer: "https://ci.example.org", Subject: "oci://" + image,
			TS: []string{"https://ts.example.org"}, PredicateType: "https://slsa.dev/provenance/v1", Created: created},
	})
	if err != nil {
		panic(err)
	}
	fmt.Println("attached:", len(done), done[0].Mode)

	d, err := c.Discover(ctx, reg.Host+"/acme/widgets:v1", oci.WithContent())
	if err != nil {
		panic(err)
	}
	fmt.Println("tag resolved to the image:", d.Repository+"@"+d.Digest == image)
	for _, e := range d.Entries {
		fmt.Println(e.Descriptor.ArtifactType, e.Annotations.Issuer, e.Annotations.TS, e.Annotations.Created.Format(time.RFC3339))
		fmt.Println("same statement:", bytes.Equal(e.Statement, statement), "same preimage:", bytes.Equal(e.Preimage, preimage))
	}
	// Output:
	// attached: 1 referrers-api
	// tag resolved to the image: true
	// application/scitt-statement+cose https://ci.example.org [https://ts.example.org] 2026-03-01T12:00:00Z
	// same statement: true same preimage: true
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

// transparentStatement signs preimage and adds a receipt of a one-entry log.
func transparentStatement(ctx context.Context, preimage []byte, subject string) []byte {
	issuer, err := keys.Generate(cose.AlgorithmES256)
	if err != nil {
		panic(err)
	}
	service, err := keys.Generate(cose.AlgorithmES256)
	if err != nil {
		panic(err)
	}
	stmt, err := scitt.SignStatement(ctx, issuer, scitt.Claims{Issuer: "https://ci.example.org", Subject: subject}, preimage)
	if err != nil {
		panic(err)
	}
	receipt, err := scitt.IssueReceipt(ctx, service, scitt.ReceiptClaims{Issuer: "https://ts.example.org"},
		scitt.InclusionProof{TreeSize: 1}, scitt.LeafHash(stmt, scitt.LeafIETF))
	if err != nil {
		panic(err)
	}
	t, err := scitt.AddReceipt(stmt, receipt)
	if err != nil {
		panic(err)
	}
	return t
}
