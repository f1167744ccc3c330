package main

import (
	"fmt"
	"log/slog"

	"github.com/spf13/cobra"

	"github.com/trustfabric/trustfabric/pkg/transparency"
)

func init() { register(NewCmdServe) }

// NewCmdServe returns `trustfabric serve`: the SCITT Transparency Service.
func NewCmdServe() *cobra.Command {
	var o transparency.ServeOptions
	var level string
	cmd := &cobra.Command{
		Use:   "serve --data DIR [--addr HOST:PORT] [--config FILE] [--trust-key FILE]... [--issuer URI]",
		Short: "Run the SCITT Transparency Service (SCRAPI on an embedded Tessera log)",
		Long: `serve runs the Transparency Service: it registers Signed Statements that its
registration policy accepts in an append-only Tessera log kept in --data, and
returns COSE Receipts. Nothing else needs to be installed: keys are generated
into --data on first start (mode 0600).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var lv slog.Level
			if err := lv.UnmarshalText([]byte(level)); err != nil {
				return fmt.Errorf("--log-level %q: want debug, info, warn or error", level)
			}
			o.Logger = slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: lv}))
			o.Ready = func(addr string) { fmt.Fprintf(cmd.OutOrStdout(), "listening on %s\n", addr) }
			return transparency.ListenAndServe(cmd.Context(), o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Addr, "addr", "127.0.0.1:8080", "listen address HOST:PORT")
	f.StringVar(&o.Dir, "data", "", "data directory (log, statements, keys); created if missing")
	f.StringVar(&o.ConfigFile, "config", "", "YAML configuration: registration policy, issuer, timings")
	f.StringArrayVar(&o.TrustKeys, "trust-key", nil, "issuer public key file (JWK, JWK Set, COSE_Key(Set) or PEM) trusted for any issuer; repeatable")
	f.StringVar(&o.Issuer, "issuer", "", "service identifier URI used as the receipts' iss (default from --config, else https://localhost)")
	f.StringVar(&o.KeyFile, "key", "", "receipt signing key file (default: generated into --data)")
	f.BoolVar(&o.RotateKey, "rotate-key", false, "retire the key in --data and generate a new one; old public keys stay published")
	f.StringVar(&level, "log-level", "info", "log level: debug, info, warn or error")
	cmd.MarkFlagRequired("data")
	return cmd
}
