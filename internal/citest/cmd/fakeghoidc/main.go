// Command fakeghoidc serves citest.GitHubOIDC on loopback, so that the self-test
// workflow can run offline under act: it stands in for GitHub's OIDC issuer and
// the runner's token request endpoint. It writes the values act needs
// (ACTIONS_ID_TOKEN_REQUEST_URL, ACTIONS_ID_TOKEN_REQUEST_TOKEN and the issuer)
// as KEY=VALUE lines to --env-file, then serves until interrupted.
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
		fmt.Fprintf(os.Stderr, "fakeghoidc: %v\n", err)
		os.Exit(1)
	}
}

func run() error {
	addr := flag.String("addr", "127.0.0.1:0", "loopback address to listen on")
	envFile := flag.String("env-file", "", "file to write the ACTIONS_ID_TOKEN_REQUEST_* values to")
	var r citest.GitHubRun
	flag.StringVar(&r.Repository, "repository", "", "owner/name of the repository (default acme/widgets)")
	flag.StringVar(&r.Ref, "ref", "", "git ref of the run (default refs/heads/main)")
	flag.StringVar(&r.EventName, "event", "", "event name (default push)")
	flag.StringVar(&r.WorkflowPath, "workflow", "", "workflow file path (default .github/workflows/release.yml)")
	flag.StringVar(&r.SHA, "sha", "", "commit SHA")
	flag.Parse()
	if *envFile == "" {
		return errors.New("--env-file is required")
	}
	host, _, err := net.SplitHostPort(*addr)
	if err != nil {
		return fmt.Errorf("bad --addr: %w", err)
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("--addr must be a loopback address, got %s", host)
	}
	g, err := citest.NewGitHubOIDC(r)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	g.SetBaseURL("http://" + ln.Addr().String())
	env := fmt.Sprintf("ACTIONS_ID_TOKEN_REQUEST_URL=%s\nACTIONS_ID_TOKEN_REQUEST_TOKEN=%s\nTF_SELFTEST_OIDC_ISSUER=%s\n",
		g.RequestURL(), g.RequestToken, g.Issuer())
	if err := os.WriteFile(*envFile, []byte(env), 0o600); err != nil {
		return err
	}
	srv := &http.Server{Handler: g, ReadHeaderTimeout: 5 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown)
	}()
	fmt.Fprintf(os.Stderr, "fakeghoidc: issuer %s\n", g.Issuer())
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
