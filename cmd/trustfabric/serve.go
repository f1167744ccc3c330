//go:build !windows

package main

import (
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/debug"

	"github.com/spf13/cobra"

	"github.com/trustfabric/trustfabric/pkg/server"
	"github.com/trustfabric/trustfabric/pkg/transparency"
	"github.com/trustfabric/trustfabric/pkg/transparency/storage/posix"
)

func init() { register(NewCmdServe) }

// NewCmdServe returns `trustfabric serve`: the SCITT Transparency Service.
func NewCmdServe() *cobra.Command {
	var so server.Config
	o := &so
	var level, logFormat string
	var requireWIMSE, repair, initLogKey bool
	cmd := &cobra.Command{
		Use:   "serve --data DIR [--storage posix|aws --db DSN --s3-bucket NAME [--s3-endpoint URL] [--s3-path-style] --key FILE] [--addr HOST:PORT] [--config FILE] [--trust-key FILE]... [--issuer URI] [--identity-config FILE]",
		Short: "Run the SCITT Transparency Service (SCRAPI on an embedded Tessera log) and, optionally, the Identity Server; /healthz, /readyz and /metrics for operators",
		Example: `  trustfabric serve --data ./ts-data --trust-key issuer.pub.jwk
  trustfabric serve --data /var/lib/trustfabric --addr :8443 --public-url https://ts.example --tls-cert tls.crt --tls-key tls.key --log-format json
  trustfabric serve --data ./ts-data --config ts.yaml --identity-config identity.yaml
  TF_DB_DSN='tf:…@tcp(db:3306)/tf' trustfabric serve --data ./replica-1 --storage aws --s3-bucket tf-log --key log-key.jwk`,
		Long: `serve runs the Transparency Service: it registers Signed Statements that its
registration policy accepts in an append-only Tessera log kept in --data, and
returns COSE Receipts. Nothing else needs to be installed: keys are generated
into --data on first start (mode 0600).

Memory: unless GOMEMLIMIT is set, serve runs with a soft memory limit of
768 MiB (Go's runtime/debug.SetMemoryLimit): the garbage collector works
harder near it instead of letting the heap double past it. Set GOMEMLIMIT
to about 90% of the memory you give the process (e.g. GOMEMLIMIT=900MiB
under a 1 GiB container limit, or GOMEMLIMIT=off for none).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if repair {
				rep, err := transparency.Repair(cmd.Context(), o.Dir)
				if err != nil {
					return err
				}
				printRepair(cmd.OutOrStdout(), rep)
				return nil
			}
			if initLogKey {
				vkey, err := server.InitLogKey(so)
				if err != nil {
					return err
				}
				fmt.Fprintln(cmd.OutOrStdout(), vkey)
				return nil
			}
			var lv slog.Level
			if err := lv.UnmarshalText([]byte(level)); err != nil {
				return fmt.Errorf("--log-level %q: want debug, info, warn or error", level)
			}
			hopts := &slog.HandlerOptions{Level: lv}
			switch logFormat {
			case "text":
				o.Logger = slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), hopts))
			case "json":
				o.Logger = slog.New(slog.NewJSONHandler(cmd.ErrOrStderr(), hopts))
			default:
				return fmt.Errorf("--log-format %q: want text or json", logFormat)
			}
			setMemoryLimit(o.Logger)
			if so.Storage.DB == "" {
				// Keeps the database password off the command line (and out
				// of the config file), whether the flags or --config's
				// storage section choose the aws backend.
				kind := so.Storage.Kind
				if kind == "" && o.ConfigFile != "" {
					if c, err := transparency.LoadConfig(o.ConfigFile); err == nil && c.Storage.DB == "" {
						kind = c.Storage.Kind
					}
				}
				if kind == server.StorageAWS {
					so.Storage.DB = os.Getenv("TF_DB_DSN")
				}
			}
			if cmd.Flags().Changed("require-wimse") {
				so.RequireWIMSE = &requireWIMSE
			}
			return server.Run(cmd.Context(), so, func(addr string) { fmt.Fprintf(cmd.OutOrStdout(), "listening on %s\n", addr) })
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
	f.BoolVar(&repair, "repair", false, "repair the data directory instead of serving: rebuild the statement store from its intact records and the log, list statements that are lost, then exit (run it when serve refuses to start on damaged storage)")
	f.BoolVar(&initLogKey, "init-log-key", false, "create the log's checkpoint key in --data if missing, print its verifier key (give it to the witnesses before the first start) and exit")
	f.StringVar(&level, "log-level", "info", "log level: debug, info, warn or error")
	f.StringVar(&logFormat, "log-format", "text", "log format: text or json (one JSON object a line, for log collectors)")
	f.StringVar(&so.TLSCertFile, "tls-cert", "", "serve HTTPS with this PEM certificate (chain) file, reloaded when it changes (with --tls-key)")
	f.StringVar(&so.TLSKeyFile, "tls-key", "", "PEM private key file of --tls-cert, reloaded when it changes")
	f.StringVar(&so.IdentityConfig, "identity-config", "", "also run the Identity Server (POST /token, /.well-known/wit-bundle) with this YAML configuration; its bundle is trusted for registrations")
	f.StringArrayVar(&so.IdentityBundles, "identity-bundle", nil, "trust WITs of another trust domain for registrations: TRUST_DOMAIN=BUNDLE_FILE (repeatable)")
	f.StringArrayVar(&so.IdentityBundleAlgorithms, "identity-bundle-alg", nil, "also accept these JWS algorithms (EdDSA) for the WITs of an --identity-bundle trust domain: TRUST_DOMAIN=ALG[,ALG] (repeatable; the WIT-SVID profile's RS/ES/PS stay the default)")
	f.BoolVar(&requireWIMSE, "require-wimse", true, "require Workload-Identity-Token and Workload-Proof-Token headers on POST /entries (default: on when a trust domain is trusted)")
	f.StringVar(&so.PublicURL, "public-url", "", "URL clients reach this server at: the WIMSE proof audience and the Identity Server's default issuer (default http://ADDR)")
	f.StringVar(&so.Storage.Kind, "storage", "", "storage backend: posix (default: the log and statements in --data) or aws (a MySQL-compatible database + S3-compatible bucket shared by replicas; needs --key)")
	f.StringVar(&so.Storage.DB, "db", "", "--storage aws: database DSN user:password@tcp(host:port)/dbname (default $TF_DB_DSN)")
	f.StringVar(&so.Storage.S3Bucket, "s3-bucket", "", "--storage aws: S3 bucket for tiles, entry bundles and checkpoints")
	f.StringVar(&so.Storage.S3Endpoint, "s3-endpoint", "", "--storage aws: S3 endpoint URL of a self-hosted S3-compatible store (default: AWS S3); credentials and region from the AWS environment variables or shared config")
	f.BoolVar(&so.Storage.S3PathStyle, "s3-path-style", false, "--storage aws: path-style S3 addressing (most self-hosted stores need it)")
	f.StringVar(&so.Storage.S3Prefix, "s3-prefix", "", "--storage aws: prefix of every object name (several logs in one bucket, each with its own database)")
	cmd.MarkFlagRequired("data")
	return cmd
}

// defaultMemoryLimit is serve's soft memory limit when GOMEMLIMIT is not
// set: a backstop, not what keeps memory flat. The service's own state does
// not grow with the log (the POSIX backend keeps its entry index on disk;
// every cache is bounded); what is left is the working set of the requests
// in flight, which grows with the clients: 165-175 MiB peak RSS at 64
// clients x 20 open registrations, about 345 MiB at 4,096 clients. A limit
// below the working set makes the collector run without pause (its CPU
// share capped at half) and throughput collapse: 160 MiB gave 1,297/s at
// 4,096 clients where no limit gave 4,731/s (docs/benchmarks.md, issue 12).
// 768 MiB sits above every working set measured and below the 1 GiB
// container limit of deploy/kubernetes. Operators set GOMEMLIMIT to about
// 90 % of their own memory limit.
const defaultMemoryLimit = 768 << 20

// setMemoryLimit applies defaultMemoryLimit unless GOMEMLIMIT is set.
func setMemoryLimit(logger *slog.Logger) {
	if v, ok := os.LookupEnv("GOMEMLIMIT"); ok && v != "" {
		return
	}
	debug.SetMemoryLimit(defaultMemoryLimit)
	logger.Debug("soft memory limit (set GOMEMLIMIT to change it)", slog.Int64("bytes", defaultMemoryLimit))
}

// printRepair writes the report of `serve --repair`.
func printRepair(w io.Writer, r *posix.RepairReport) {
	fmt.Fprintf(w, "repaired the statement store in %s\n", r.Dir)
	fmt.Fprintf(w, "log entries:                     %d\n", r.LogSize)
	fmt.Fprintf(w, "statements restored:             %d\n", r.Restored)
	fmt.Fprintf(w, "statements pending (appended at the next start): %d\n", r.Pending)
	fmt.Fprintf(w, "statements lost:                 %d\n", len(r.Lost))
	for _, d := range r.Damaged {
		fmt.Fprintf(w, "dropped damaged bytes %d..%d (%d bytes)\n", d.Offset, d.Offset+d.Length, d.Length)
	}
	if r.Backup != "" {
		fmt.Fprintf(w, "the old statement store is kept as %s\n", r.Backup)
	}
	if len(r.Lost) > 0 {
		fmt.Fprintln(w, "lost statements: the log holds these entries but their statements are gone; registering the same statement again restores it:")
		for _, l := range r.Lost {
			fmt.Fprintf(w, "  index %d entry %s\n", l.Index, hex.EncodeToString(l.Entry[:]))
		}
	}
}
