package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/trustfabric/trustfabric/pkg/monitor"
	"github.com/trustfabric/trustfabric/pkg/scitt"
)

func init() { register(NewCmdMonitor) }

// NewCmdMonitor returns `trustfabric monitor`.
func NewCmdMonitor() *cobra.Command {
	var tsURL, statePath, vkey string
	var watch, witnesses []string
	var threshold int
	var output string
	var interval time.Duration
	cmd := &cobra.Command{
		Use: "monitor --ts URL --state FILE [--watch IDENTITY_PREFIX]... [--witness VKEY]... [--output json] [--interval D]",
		Example: `  trustfabric monitor --ts https://ts.example --state monitor-state.json --watch spiffe://ci.example/github/acme/
  trustfabric monitor --ts https://ts.example --state monitor-state.json --watch spiffe://ci.example/ --output json --interval 1m`,
		Short: "Follow a Transparency Service's log and report entries of watched identities",
		Long: `Follow a Transparency Service's log from its tiles (C2SP tlog-tiles).

Each step verifies the signed checkpoint with the log's key (pinned in the
state file on first use, or given with --vkey), proves it consistent with the
last checkpoint seen, reads the new entries, fetches and hashes their
statements, and prints every entry whose issuer (the workload identity of a
statement signed under a WIT, or the issuer's URL) starts with a --watch
prefix: one line per entry, or JSON lines with --output json. The state file is
replaced atomically, so a restarted monitor resumes without reporting an entry
twice.

Without --interval it catches up once and exits 0. A split view or rewritten
history (the log is not an extension of the one seen before) or a log whose
contents do not match its checkpoint exits 1, naming the inconsistency.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			opts := []monitor.Option{monitor.WithWatch(watch...)}
			if vkey != "" {
				opts = append(opts, monitor.WithVerifierKey(vkey))
			}
			if len(witnesses) > 0 {
				w := scitt.Witnesses{Threshold: threshold}
				if w.Threshold == 0 {
					w.Threshold = len(witnesses)
				}
				for _, k := range witnesses {
					v, err := scitt.ParseWitnessKey(k)
					if err != nil {
						return err
					}
					w.Keys = append(w.Keys, v)
				}
				opts = append(opts, monitor.WithWitnesses(w))
			}
			m, err := monitor.New(tsURL, statePath, opts...)
			if err != nil {
				return err
			}
			return runMonitor(cmd.Context(), m, interval, cmd.OutOrStdout(), output == "json")
		},
	}
	cmd.Flags().StringVar(&tsURL, "ts", "", "Transparency Service URL")
	cmd.Flags().StringVar(&statePath, "state", "", "state file (created on first use)")
	cmd.Flags().StringArrayVar(&watch, "watch", nil, "report entries whose issuer starts with this prefix (repeatable)")
	addOutputFlag(cmd, &output) // json: one JSON object a line
	cmd.Flags().StringVar(&vkey, "vkey", "", "the log's checkpoint verifier key (default: pinned in the state file, else fetched from /log/vkey on first use)")
	cmd.Flags().StringArrayVar(&witnesses, "witness", nil, "require checkpoints cosigned by this witness (cosignature/v1 vkey; repeatable)")
	cmd.Flags().IntVar(&threshold, "witness-threshold", 0, "how many --witness keys must have cosigned (default: all)")
	cmd.Flags().DurationVar(&interval, "interval", 0, "keep following the log, checking every interval (0: catch up once and exit)")
	_ = cmd.MarkFlagRequired("ts")
	_ = cmd.MarkFlagRequired("state")
	return cmd
}

func runMonitor(ctx context.Context, m *monitor.Monitor, interval time.Duration, out io.Writer, asJSON bool) error {
	enc := json.NewEncoder(out)
	report := func(r monitor.Report) error {
		if asJSON {
			return enc.Encode(r)
		}
		_, err := fmt.Fprintf(out, "entry %d %s issuer=%s subject=%s\n", r.Index, r.Entry, r.Issuer, r.Subject)
		return err
	}
	for {
		_, err := m.Step(ctx, report)
		switch {
		case errors.Is(err, monitor.ErrInconsistent), errors.Is(err, monitor.ErrBadLog), errors.Is(err, monitor.ErrBadCheckpoint):
			return &invalidError{err}
		case err != nil:
			return err
		case interval <= 0:
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(interval):
		}
	}
}
