package main

import (
	"fmt"
	"time"

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
	var keyFile, output string
	cmd := &cobra.Command{
		Use:   "register --ts URL --key FILE --count N --concurrency C [--payload-size B] [--window W] [--sync] [--duration D [--warmup W]] [--output json]",
		Short: "Register N pre-signed statements from C concurrent clients and report rate and receipt latency",
		Example: `  trustfabric bench register --ts http://127.0.0.1:8080 --key issuer.jwk --count 10000 --concurrency 64
  trustfabric bench register --ts http://127.0.0.1:8080 --key issuer.jwk --count 20000 --concurrency 64 --sync --window 1 --duration 30s --warmup 5s   # closed loop
  trustfabric bench register --ts http://127.0.0.1:8080 --key issuer.jwk --count 1000 --concurrency 8 --output json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			k, err := keys.LoadPrivate(keyFile)
			if err != nil {
				return err
			}
			cfg.Key = k
			rep, err := loadgen.Run(cmd.Context(), cfg)
			if rep != nil {
				if perr := printResult(cmd.OutOrStdout(), output, newBenchReport(rep), func() { fmt.Fprint(cmd.OutOrStdout(), rep) }); perr != nil {
					return perr
				}
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
	addOutputFlag(cmd, &output)
	return cmd
}

// benchReport is the --output json of `bench register` (docs/cli-json.md):
// loadgen.Report with durations in milliseconds.
type benchReport struct {
	Mode            string      `json:"mode"` // pipelined or sync
	Count           int         `json:"count"`
	Concurrency     int         `json:"concurrency"`
	Window          int         `json:"window"`
	PayloadSize     int         `json:"payloadSize"`
	ElapsedMs       float64     `json:"elapsedMs"`
	SubmitElapsedMs float64     `json:"submitElapsedMs"`
	RatePerSecond   float64     `json:"ratePerSecond"`
	LatencyMs       latencyJSON `json:"latencyMs"`
	Verified        int         `json:"verified"`
	VerifyElapsedMs float64     `json:"verifyElapsedMs"`
	// A timed run (--duration): its settings and the receipts of the
	// measured window the rate and latencies are taken from.
	DurationMs float64 `json:"durationMs,omitempty"`
	WarmupMs   float64 `json:"warmupMs,omitempty"`
	Measured   int     `json:"measured,omitempty"`
}

type latencyJSON struct {
	P50 float64 `json:"p50"`
	P90 float64 `json:"p90"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
}

func newBenchReport(r *loadgen.Report) benchReport {
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	mode := "pipelined"
	if r.Sync {
		mode = "sync"
	}
	var rate float64
	if r.Elapsed > 0 {
		rate = r.Rate()
	}
	out := benchReport{Mode: mode, Count: r.Count, Concurrency: r.Concurrency, Window: r.Window, PayloadSize: r.PayloadSize,
		ElapsedMs: ms(r.Elapsed), SubmitElapsedMs: ms(r.SubmitElapsed), RatePerSecond: rate,
		LatencyMs: latencyJSON{P50: ms(r.P50), P90: ms(r.P90), P99: ms(r.P99), Max: ms(r.Max)},
		Verified:  r.Verified, VerifyElapsedMs: ms(r.VerifyElapsed)}
	if r.Duration > 0 {
		out.DurationMs, out.WarmupMs, out.Measured = ms(r.Duration), ms(r.Warmup), r.Measured
	}
	return out
}
