package attest_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/trustfabric/trustfabric/pkg/attest"
	"github.com/trustfabric/trustfabric/pkg/oci"
	"github.com/trustfabric/trustfabric/pkg/server/servertest"
)

// TestRunRecursive attests an index and its two platform manifests: each
// gets one referrer whose statement is about it.
func TestRunRecursive(t *testing.T) {
	ctx := context.Background()
	env := startEnv(t, servertest.Config{})
	tag, err := name.NewTag(env.RegistryHost+"/acme/multi:v1", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	var adds []mutate.IndexAddendum
	for _, arch := range []string{"amd64", "arm64"} {
		img, err := random.Image(256, 1)
		if err != nil {
			t.Fatal(err)
		}
		adds = append(adds, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: arch}}})
	}
	idx := mutate.AppendManifests(mutate.IndexMediaType(empty.Index, types.OCIImageIndex), adds...)
	if err := remote.WriteIndex(tag, idx, remote.WithContext(ctx)); err != nil {
		t.Fatal(err)
	}

	res, platforms, err := attest.RunRecursive(ctx, options(env, tag.String()))
	if err != nil {
		t.Fatal(err)
	}
	if len(platforms) != 2 {
		t.Fatalf("%d platform results, want 2", len(platforms))
	}
	reg, err := oci.New()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, r := range append([]*attest.Result{res}, platforms...) {
		if !r.Attached() || seen[r.Digest] {
			t.Fatalf("result %+v (attached twice or not at all)", r)
		}
		seen[r.Digest] = true
		d, err := reg.Discover(ctx, r.Repository+"@"+r.Digest)
		if err != nil {
			t.Fatal(err)
		}
		if len(d.Entries) != 1 || !strings.HasSuffix(d.Entries[0].Annotations.Subject, "@"+r.Digest) {
			t.Errorf("%s: referrers %+v, want one statement about it", r.Digest, d.Entries)
		}
	}

	// A plain image: no platforms. A given predicate: refused.
	if _, ps, err := attest.RunRecursive(ctx, options(env, env.ImageTag)); err != nil || len(ps) != 0 {
		t.Errorf("plain image: %d platforms, %v", len(ps), err)
	}
	o := options(env, tag.String())
	o.PredicateFile = "predicate.json"
	if _, _, err := attest.RunRecursive(ctx, o); !errors.Is(err, attest.ErrInput) {
		t.Errorf("--predicate with --recursive: %v, want ErrInput", err)
	}
}
