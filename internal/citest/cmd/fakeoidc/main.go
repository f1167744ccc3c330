// Command fakeoidc serves a fake CI OIDC issuer on loopback so that the
// self-tests can run offline: under act (-provider github: GitHub's issuer and
// the runner's token request endpoint) and under gitlab-ci-local (-provider
// gitlab: a GitLab instance's issuer, plus one ID token minted for -audience,
// as GitLab puts into an id_tokens variable). It writes KEY=VALUE lines to
// -env-file (github: ACTIONS_ID_TOKEN_REQUEST_URL, ACTIONS_ID_TOKEN_REQUEST_TOKEN;
// gitlab: TRUSTFABRIC_ID_TOKEN; both: TF_SELFTEST_OIDC_ISSUER), then serves
// until interrupted.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/trustfabric/trustfabric/internal/citest"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintf(os.Stderr, "fakeoidc: %v\n", err)
		os.Exit(1)
	}
}

func run() error {
	addr := flag.String("addr", "127.0.0.1:0", "loopback address to listen on")
	envFile := flag.String("env-file", "", "file to write the variables a runner needs")
	provider := flag.String("provider", "github", "github or gitlab")
	audience := flag.String("audience", "", "gitlab: the aud of the minted ID token (the identity server URL)")
	repo := flag.String("repository", "", "github: owner/name; gitlab: group/project (defaults: acme/widgets, acme/app)")
	flag.Parse()
	if *envFile == "" {
		return errors.New("-env-file is required")
	}
	host, _, err := net.SplitHostPort(*addr)
	if err != nil {
		return fmt.Errorf("bad -addr: %w", err)
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("-addr must be a loopback address, got %s", host)
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	base := "http://" + ln.Addr().String()
	var h http.Handler
	var env string
	switch *provider {
	case "github":
		g, err := citest.NewGitHubOIDC(citest.GitHubRun{Repository: *repo})
		if err != nil {
			return err
		}
		g.SetBaseURL(base)
		h = g
		env = fmt.Sprintf("ACTIONS_ID_TOKEN_REQUEST_URL=%s\nACTIONS_ID_TOKEN_REQUEST_TOKEN=%s\n", g.RequestURL(), g.RequestToken)
	case "gitlab":
		if *audience == "" {
			return errors.New("-audience is required with -provider gitlab")
		}
		g, err := citest.NewGitLabOIDC(citest.GitLabJob{ProjectPath: *repo})
		if err != nil {
			return err
		}
		g.SetBaseURL(base)
		tok, err := g.Mint(*audience, time.Now())
		if err != nil {
			return err
		}
		h = g
		env = fmt.Sprintf("TRUSTFABRIC_ID_TOKEN=%s\n", tok)
	default:
		return fmt.Errorf("-provider must be github or gitlab, got %q", *provider)
	}
	env += "TF_SELFTEST_OIDC_ISSUER=" + base + "\n"
	if err := os.WriteFile(*envFile, []byte(env), 0o600); err != nil {
		return err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown)
	}()
	fmt.Fprintf(os.Stderr, "fakeoidc: %s issuer at %s\n", *provider, base)
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
