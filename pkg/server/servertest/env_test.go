package servertest_test

import (
	"bytes"
	"errors"
	"net/http"
	"testing"

	"github.com/trustfabric/trustfabric/pkg/keys"
	"github.com/trustfabric/trustfabric/pkg/oci"
	"github.com/trustfabric/trustfabric/pkg/scitt"
	"github.com/trustfabric/trustfabric/pkg/scitt/scrapi"
	"github.com/trustfabric/trustfabric/pkg/server/servertest"
	"github.com/trustfabric/trustfabric/pkg/wimse"
	"github.com/trustfabric/trustfabric/pkg/workload"
)

// TestEnvRequiresWIMSE checks the wiring the environment promises: the
// runner environment yields a WIT from the Identity Server, the Transparency
// Service registers a statement bound to it only when the request carries
// the WIMSE headers, and the image is in the registry.
func TestEnvRequiresWIMSE(t *testing.T) {
	env, err := servertest.Start(t.Context(), servertest.Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer env.Close()
	ctx := t.Context()

	creds, err := workload.Obtain(ctx, workload.ObtainOptions{Server: env.IdentityURL, Getenv: env.Getenv, Out: &bytes.Buffer{}})
	if err != nil {
		t.Fatalf("obtain: %v", err)
	}
	stmt, err := scitt.SignStatement(ctx, creds.Key, scitt.Claims{Issuer: creds.ID.String(), Subject: "oci://" + env.Image},
		[]byte(`{}`), scitt.WithWIT(creds.WIT))
	if err != nil {
		t.Fatal(err)
	}

	plain, _ := scrapi.NewClient(env.TSURL, scrapi.WithRetries(0))
	_, err = plain.Register(ctx, stmt)
	var p *scrapi.Problem
	if !errors.As(err, &p) || p.Status != http.StatusUnauthorized || p.Title != "Workload identity required" {
		t.Fatalf("registration without WIMSE headers: err = %v, want a 401 problem", err)
	}

	wk, err := keys.NewPrivateKey(creds.Key.Signer)
	if err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{Transport: &wimse.Transport{Credentials: wimse.Credentials{WIT: creds.WIT, Key: wk}}}
	authed, _ := scrapi.NewClient(env.TSURL, scrapi.WithHTTPClient(hc))
	reg, err := authed.Register(ctx, stmt)
	if err != nil {
		t.Fatalf("registration with WIMSE headers: %v", err)
	}
	r, err := scitt.ParseReceipt(reg.Receipt)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.VerifyInclusion(stmt, env.TSKeys, scitt.LeafIETF); err != nil {
		t.Errorf("receipt does not verify under Env.TSKeys: %v", err)
	}

	c, _ := oci.New()
	if _, dig, err := c.Resolve(ctx, env.ImageTag); err != nil || dig == "" || env.Image[len(env.Image)-len(dig):] != dig {
		t.Errorf("tag %s resolves to %s (%v), Env.Image is %s", env.ImageTag, dig, err, env.Image)
	}
}
