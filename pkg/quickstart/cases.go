package quickstart

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/trustfabric/trustfabric/pkg/attest"
	"github.com/trustfabric/trustfabric/pkg/oci"
	"github.com/trustfabric/trustfabric/pkg/policy"
	"github.com/trustfabric/trustfabric/pkg/scitt"
	"github.com/trustfabric/trustfabric/pkg/server/servertest"
)

// DenyCase is evidence the gate must refuse, and the check it must refuse
// it at.
type DenyCase struct {
	Name  string
	Check string
	// Prepare pushes a new image to env's registry, attaches the faulty
	// evidence to it and returns the image by digest. dir is scratch space.
	Prepare func(ctx context.Context, env *servertest.Env, reg *oci.Client, dir string) (string, error)
}

// DenyCases are the four refusals quickstart demonstrates (issue 6).
var DenyCases = []DenyCase{
	{"preimage swapped on the registry", policy.CheckPreimage, swappedPreimage},
	{"statement by an identity the policy does not allow", policy.CheckIdentity, otherIdentity},
	{"receipt from a service the policy does not trust", policy.CheckReceipts, untrustedService},
	{"tampered inclusion proof", policy.CheckReceipts, tamperedProof},
}

// newImage pushes a fresh random image next to the main one.
func newImage(ctx context.Context, env *servertest.Env, dir string) (string, error) {
	return servertest.PushRandomImage(ctx, env.RegistryHost+"/"+servertest.DefaultRepository+":"+filepath.Base(dir))
}

// registeredOnly runs attest with registry writes blocked: the statement is
// registered and receipted but not attached. It returns the transparent
// statement and its preimage.
func registeredOnly(ctx context.Context, env *servertest.Env, image, dir string, getenv func(string) string) ([]byte, []byte, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, nil, err
	}
	ro, err := oci.New(oci.WithTransport(blockWrites{}))
	if err != nil {
		return nil, nil, err
	}
	res, err := attest.Run(ctx, attest.Options{Image: image, TS: env.TSURL, IdentityServer: env.IdentityURL,
		Getenv: getenv, Registry: ro, StatementOut: filepath.Join(dir, "statement.cose"), Out: io.Discard})
	var na *attest.NotAttachedError
	if !errors.As(err, &na) {
		return nil, nil, fmt.Errorf("attest with writes blocked: want a not-attached error, got %w", err)
	}
	if res != nil && len(res.Statement) > 0 {
		return res.Statement, res.Preimage, nil
	}
	stmt, err := os.ReadFile(na.StatementPath)
	if err != nil {
		return nil, nil, err
	}
	pre, err := os.ReadFile(na.PreimagePath)
	return stmt, pre, err
}

// attach attaches a transparent statement and its preimage; a non-nil
// forged preimage replaces the genuine one in the referrer.
func attach(ctx context.Context, reg *oci.Client, image string, stmt, preimage, forged []byte) error {
	a, err := attest.NewAttachment(stmt, preimage)
	if err != nil {
		return err
	}
	if forged != nil {
		a.Preimage = forged
	}
	_, err = reg.Attach(ctx, image, a)
	return err
}

// swappedPreimage: a genuine statement, but the in-toto statement next to it
// on the registry was replaced.
func swappedPreimage(ctx context.Context, env *servertest.Env, reg *oci.Client, dir string) (string, error) {
	image, err := newImage(ctx, env, dir)
	if err != nil {
		return "", err
	}
	stmt, pre, err := registeredOnly(ctx, env, image, dir, env.Getenv)
	if err != nil {
		return "", err
	}
	forged := bytes.Replace(pre, []byte(`"refs/heads/main"`), []byte(`"refs/heads/evil"`), 1)
	if bytes.Equal(forged, pre) {
		forged = append(bytes.TrimRight(pre, "\n"), ' ')
	}
	return image, attach(ctx, reg, image, stmt, pre, forged)
}

// otherIdentity: a job of another repository of the same owner gets a
// genuine identity and registration, which the policy does not allow.
func otherIdentity(ctx context.Context, env *servertest.Env, reg *oci.Client, dir string) (string, error) {
	image, err := newImage(ctx, env, dir)
	if err != nil {
		return "", err
	}
	orig := env.GitHub.Run()
	other := orig
	other.Repo, other.RepoID = "tools", "700700700"
	env.GitHub.SetRun(other)
	defer env.GitHub.SetRun(orig)
	vars := env.GitHub.Env()
	getenv := func(k string) string {
		if v, ok := vars[k]; ok {
			return v
		}
		return env.Getenv(k)
	}
	stmt, pre, err := registeredOnly(ctx, env, image, dir, getenv)
	if err != nil {
		return "", err
	}
	return image, attach(ctx, reg, image, stmt, pre, nil)
}

// untrustedService: the image is attested through a second, complete set of
// services that the policy does not trust.
func untrustedService(ctx context.Context, env *servertest.Env, reg *oci.Client, dir string) (string, error) {
	image, err := newImage(ctx, env, dir)
	if err != nil {
		return "", err
	}
	other, err := servertest.Start(ctx, servertest.Config{Dir: filepath.Join(dir, "other-services")})
	if err != nil {
		return "", err
	}
	defer other.Close()
	_, err = attest.Run(ctx, attest.Options{Image: image, TS: other.TSURL, IdentityServer: other.IdentityURL,
		Getenv: other.Getenv, Out: io.Discard})
	return image, err
}

// tamperedProof: a genuine statement whose receipt's first audit-path node
// was altered on the way to the registry.
func tamperedProof(ctx context.Context, env *servertest.Env, reg *oci.Client, dir string) (string, error) {
	image, err := newImage(ctx, env, dir)
	if err != nil {
		return "", err
	}
	stmt, pre, err := registeredOnly(ctx, env, image, dir, env.Getenv)
	if err != nil {
		return "", err
	}
	receipts, err := scitt.Receipts(stmt)
	if err != nil || len(receipts) == 0 {
		return "", fmt.Errorf("no receipt to tamper with: %w", err)
	}
	r, err := scitt.ParseReceipt(receipts[0])
	if err != nil {
		return "", err
	}
	if len(r.Inclusion) == 0 || len(r.Inclusion[0].Path) == 0 {
		return "", errors.New("the receipt has an empty audit path (a one-entry log); nothing to tamper with")
	}
	node := r.Inclusion[0].Path[0]
	i := bytes.Index(receipts[0], node)
	if i < 0 {
		return "", errors.New("audit path node not found in the receipt")
	}
	bad := bytes.Clone(receipts[0])
	bad[i] ^= 0x01
	bare, err := scitt.RemoveReceipts(stmt)
	if err != nil {
		return "", err
	}
	tampered, err := scitt.AddReceipt(bare, bad)
	if err != nil {
		return "", err
	}
	return image, attach(ctx, reg, image, tampered, pre, nil)
}
