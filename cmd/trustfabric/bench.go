package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/trustfabric/trustfabric/pkg/keys"
	"github.com/trustfabric/trustfabric/pkg/transparency/loadgen"
)

func init() { register(NewCmdBench) }

// NewCmdBench returns `trustfabric bench` with its `register` subcommand.
func NewCmdBench() *cobra.Command {
	cmd := &cobra.Command{Use: "bench", Short: "Load generators", Example: `  trustfabric bench register --help`}
	cmd.AddCommand(newCmdBenchRegister())
	return cmd
}

func newCmdBenchRegister() *cobra.Command {
	var cfg loadgen.Config
	var keyFile string
	cmd := &cobra.Command{
		Use:     "register --ts URL --key FILE --count N --concurrency C [--payload-size B] [--window W] [--sync] [--duration D [--warmup W]]",
		Short:   "Register N pre-signed statements from C concurrent clients and report rate and receipt latency",
		Example: `  trustfabric bench register --ts http://127.0.0.1:8080 --key issuer.jwk --count 10000 --concurrency 64`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			k, err := keys.LoadPrivate(keyFile)
			if err != nil {
				return err
			}
			cfg.Key = k
			rep, err := loadgen.Run(cmd.Context(), cfg)
			if rep != nil {
				fmt.Fprint(cmd.OutOrStdout(), rep)
			}
			if err != nil {
				return &invalidError{err}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.TS, "ts", "", "Transparency Service base URL")
	f.StringVar(&keyFile, "key", "", "issuer private key file the service trusts")
	f.IntVar(&cfg.Count, "count", 10000, "number of statements")
	f.IntVar(&cfg.Concurrency, "concurrency", 64, "concurrent clients")
	f.IntVar(&cfg.PayloadSize, "payload-size", 1024, "payload bytes per statement")
	f.IntVar(&cfg.Window, "window", 16, "registrations a client may have in flight (waiting for their receipt)")
	f.BoolVar(&cfg.Sync, "sync", false, "one POST per registration that waits for the receipt (201) instead of 303 + GET; with --window 1 a closed loop")
	f.DurationVar(&cfg.Duration, "duration", 0, "start registrations for this long, then let those in flight finish; rate and latency are those of the receipts that arrive between --warmup and --duration (--count is then the pre-signed pool; 0: run until --count are done)")
	f.DurationVar(&cfg.Warmup, "warmup", 0, "with --duration: receipts that arrive before this are not measured")
	cmd.MarkFlagRequired("ts")
	cmd.MarkFlagRequired("key")
	return cmd
}
