package main

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/trustfabric/trustfabric/pkg/keys"
	"github.com/trustfabric/trustfabric/pkg/scitt/scrapi"
	"github.com/trustfabric/trustfabric/pkg/wimse"
	"github.com/trustfabric/trustfabric/pkg/workload"
)

func init() { register(NewCmdRegister) }

// NewCmdRegister returns `trustfabric register`.
func NewCmdRegister() *cobra.Command {
	var ts, out, receiptOut, witFile, keyFile, output string
	cmd := &cobra.Command{
		Use:   "register --ts URL STATEMENT --out TRANSPARENT_STATEMENT [--receipt-out FILE]",
		Short: "Register a Signed Statement with a Transparency Service and write the Transparent Statement",
		Example: `  trustfabric register --ts https://ts.example app.cose --out app.transparent.cose
  TRUSTFABRIC_TS_URL=https://ts.example trustfabric register app.cose --out app.transparent.cose --receipt-out app.receipt`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			stmt, err := os.ReadFile(args[0])
			if err != nil {
				return fmt.Errorf("read statement: %w", err)
			}
			var opts []scrapi.Option
			if witFile != "" || keyFile != "" {
				// Authenticate the registration with WIMSE headers.
				hc, err := wimseClient(witFile, keyFile)
				if err != nil {
					return err
				}
				opts = append(opts, scrapi.WithHTTPClient(hc))
			}
			c, err := scrapi.NewClient(ts, opts...)
			if err != nil {
				return err
			}
			transparent, reg, err := c.RegisterTransparent(cmd.Context(), stmt)
			var p *scrapi.Problem
			if errors.As(err, &p) && p.Status >= 400 && p.Status < 500 {
				return &invalidError{err} // the service refused the statement
			}
			if err != nil {
				return err
			}
			if err := os.WriteFile(out, transparent, 0o644); err != nil {
				return fmt.Errorf("write transparent statement: %w", err)
			}
			if receiptOut != "" {
				if err := os.WriteFile(receiptOut, reg.Receipt, 0o644); err != nil {
					return fmt.Errorf("write receipt: %w", err)
				}
			}
			res := struct {
				EntryID              string `json:"entryId"`
				TransparentStatement string `json:"transparentStatement"`
				Receipt              string `json:"receipt,omitempty"`
			}{reg.EntryID, out, receiptOut}
			return printResult(cmd.OutOrStdout(), output, res, func() {
				fmt.Fprintf(cmd.OutOrStdout(), "registered entry %s\n", reg.EntryID)
			})
		},
	}
	cmd.Flags().StringVar(&ts, "ts", "", "Transparency Service base URL, e.g. http://127.0.0.1:8080")
	cmd.Flags().StringVar(&out, "out", "", "where to write the Transparent Statement (statement + receipt under 394)")
	cmd.Flags().StringVar(&receiptOut, "receipt-out", "", "also write the bare receipt here")
	cmd.Flags().StringVar(&witFile, "wit", "", "Workload Identity Token file: send WIMSE headers (with --key)")
	cmd.Flags().StringVar(&keyFile, "key", "", "the WIT's private key file (with --wit)")
	addOutputFlag(cmd, &output)
	cmd.MarkFlagRequired("ts")
	cmd.MarkFlagRequired("out")
	return cmd
}

// wimseClient is an HTTP client that adds the Workload-Identity-Token and a
// fresh Workload-Proof-Token to every request.
func wimseClient(witFile, keyFile string) (*http.Client, error) {
	if witFile == "" || keyFile == "" {
		return nil, errors.New("--wit and --key go together")
	}
	wit, err := workload.ReadWIT(witFile)
	if err != nil {
		return nil, err
	}
	k, err := keys.LoadPrivate(keyFile)
	if err != nil {
		return nil, err
	}
	key, err := keys.NewPrivateKey(k.Signer)
	if err != nil {
		return nil, err
	}
	return &http.Client{Timeout: 60 * time.Second, Transport: &wimse.Transport{Credentials: wimse.Credentials{WIT: wit, Key: key}}}, nil
}
