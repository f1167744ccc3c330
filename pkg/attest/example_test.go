package attest_test

import (
	"context"
	"fmt"
	"os"

	"github.com/trustfabric/trustfabric/pkg/attest"
	"github.com/trustfabric/trustfabric/pkg/server/servertest"
)

// Example attests an image in a (fake) GitHub Actions job against the
// in-process Identity Server, Transparency Service and registry.
func Example() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "attest-example-")
	defer os.RemoveAll(dir)
	env, err := servertest.Start(ctx, servertest.Config{Dir: dir})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer env.Close()

	res, err := attest.Run(ctx, attest.Options{
		Image: env.ImageTag, TS: env.TSURL, IdentityServer: env.IdentityURL,
		Getenv: env.Getenv, Out: os.Stderr,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, s := range res.Steps {
		fmt.Println(s.Name, s.Err == nil)
	}
	fmt.Println(res.WorkloadID)
	fmt.Println(len(res.EntryID), res.Attached())
	// Output:
	// identity true
	// provenance true
	// sign true
	// register true
	// attach true
	// spiffe://ci.example.org/github/acme/widgets/.github/workflows/release.yml/refs/heads/main
	// 64 true
}
