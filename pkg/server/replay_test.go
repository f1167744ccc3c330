package server_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/veraison/go-cose"

	"github.com/trustfabric/trustfabric/pkg/identity"
	"github.com/trustfabric/trustfabric/pkg/identity/oidctest"
	"github.com/trustfabric/trustfabric/pkg/keys"
	"github.com/trustfabric/trustfabric/pkg/server"
	"github.com/trustfabric/trustfabric/pkg/transparency"
	"github.com/trustfabric/trustfabric/pkg/transparency/storage/aws/awstest"
	"github.com/trustfabric/trustfabric/pkg/workload"
)

// TestReplicasShareReplayState: two replicas on one database and bucket
// (behind one public URL) share the record of used CI token ids: a CI token
// exchanged on one replica is refused when replayed against the other.
func TestReplicasShareReplayState(t *testing.T) {
	target := awstest.New(t)
	gh, err := oidctest.NewGitHub()
	if err != nil {
		t.Fatal(err)
	}
	defer gh.Close()
	dir := t.TempDir()
	tsKey, err := keys.Generate(cose.AlgorithmES256)
	if err != nil {
		t.Fatal(err)
	}
	tsKey.KID = tsKey.Public().COSEThumbprint()
	raw, err := tsKey.MarshalJWK()
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(dir, "ts.jwk")
	if err := os.WriteFile(keyFile, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	const public = "http://ts.replicas.test"
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var replicas []*server.Server
	var served []chan error
	for i := range 2 {
		s, err := server.New(ctx, server.Config{
			Addr: "127.0.0.1:0", PublicURL: public, Issuer: public, Dir: filepath.Join(dir, "replica", string(rune('a'+i))),
			KeyFile: keyFile,
			Storage: transparency.StorageConfig{Kind: server.StorageAWS, DB: target.DSN, S3Bucket: target.Bucket,
				S3Endpoint: target.Endpoint, S3Prefix: target.Prefix, S3PathStyle: true},
			Identity: &identity.Config{TrustDomain: "ci.example.org", Issuer: public, Providers: []identity.ProviderConfig{
				{Type: identity.ProviderGitHub, Issuer: gh.URL(), Audience: public}}},
		})
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- s.Serve(ctx) }()
		replicas, served = append(replicas, s), append(served, done)
	}
	defer func() {
		cancel()
		for _, d := range served {
			if err := <-d; err != nil {
				t.Errorf("serve: %v", err)
			}
		}
	}()
	// A client for the public URL that reaches one given replica (a load
	// balancer's choice).
	via := func(s *server.Server) workload.ExchangeOption {
		return workload.WithClient(&http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
			DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
				var d net.Dialer
				return d.DialContext(ctx, network, s.Addr())
			}}})
	}
	ciToken, err := gh.MintRun(oidctest.DefaultGitHubRun, public)
	if err != nil {
		t.Fatal(err)
	}
	key, err := keys.Generate(cose.AlgorithmES256)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := workload.Exchange(ctx, public, ciToken, key, via(replicas[0])); err != nil {
		t.Fatalf("exchange on replica a: %v", err)
	}
	_, err = workload.Exchange(ctx, public, ciToken, key, via(replicas[1]))
	if !errors.Is(err, workload.ErrExchange) || !strings.Contains(err.Error(), "already used") {
		t.Fatalf("the same CI token replayed on replica b: %v, want a refusal naming the replay", err)
	}
	// A fresh token still works on b.
	fresh, err := gh.MintRun(oidctest.DefaultGitHubRun, public)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := workload.Exchange(ctx, public, fresh, key, via(replicas[1])); err != nil {
		t.Fatalf("a fresh token on replica b: %v", err)
	}
}
