package main

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/trustfabric/trustfabric/pkg/credential"
	"github.com/trustfabric/trustfabric/pkg/oci"
	"github.com/trustfabric/trustfabric/pkg/policy"
)

func init() { register(NewCmdVerify) }

// NewCmdVerify returns `trustfabric verify`, the deployment gate.
func NewCmdVerify() *cobra.Command {
	var policyFile, output, credentialFile, nonce string
	var offline bool
	var insecure []string
	var timeout time.Duration
	var maxBytes int64
	cmd := &cobra.Command{
		Use:   "verify IMAGE[@DIGEST] --policy FILE [--output json] [--offline] [--credential PRESENTATION [--nonce NONCE]]",
		Short: "Allow or deny an image on its SCITT statements, receipts and identities, or on a credential (exit 0 allow, 1 deny)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if output != "text" && output != "json" {
				return fmt.Errorf("--output %q: want text or json", output)
			}
			p, err := policy.Load(policyFile)
			if err != nil {
				return err
			}
			if nonce != "" && credentialFile == "" {
				return errors.New("--nonce goes with --credential")
			}
			if credentialFile != "" {
				pres, err := readInput(credentialFile)
				if err != nil {
					return err
				}
				d, err := credential.Gate(p, credential.GateRequest{Image: args[0], Presentation: pres, Nonce: nonce})
				if err != nil {
					return err
				}
				return reportDecision(cmd, d, output)
			}
			var ociOpts []oci.Option
			for _, h := range insecure {
				ociOpts = append(ociOpts, oci.WithInsecureRegistry(h))
			}
			client, err := oci.New(ociOpts...)
			if err != nil {
				return err
			}
			opts := []policy.Option{policy.WithOCIClient(client), policy.WithBudget(timeout, maxBytes)}
			if offline {
				opts = append(opts, policy.WithOffline())
			}
			v, err := policy.NewVerifier(cmd.Context(), p, opts...)
			if err != nil {
				return err
			}
			d, err := v.Verify(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return reportDecision(cmd, d, output)
		},
	}
	f := cmd.Flags()
	f.StringVar(&policyFile, "policy", "", "verification policy file (required)")
	f.StringVarP(&output, "output", "o", "text", "output format: text or json")
	f.BoolVar(&offline, "offline", false, "use only pinned keys and bundle files, and the registry")
	f.StringArrayVar(&insecure, "insecure-registry", nil, "registry host:port to reach over plain HTTP (repeatable; loopback registries need not be listed)")
	f.DurationVar(&timeout, "timeout", policy.DefaultTimeout, "time budget of the verification (0: none); beyond it verify fails (exit 2), never allows")
	f.Int64Var(&maxBytes, "max-bytes", policy.DefaultMaxBytes, "bytes of referrer manifests and layers the verification may fetch, each blob once (0: no limit)")
	f.StringVar(&credentialFile, "credential", "", "decide on this credential presentation (SD-JWT VC or SD-CWT) under the policy's credentials section, not on SCITT evidence; IMAGE must carry its digest")
	f.StringVar(&nonce, "nonce", "", "the nonce the credential presentation must carry (with --credential)")
	_ = cmd.MarkFlagRequired("policy")
	return cmd
}

// reportDecision prints a decision and returns the deny as an invalid
// error (exit 1).
func reportDecision(cmd *cobra.Command, d *policy.Decision, output string) error {
	if output == "json" {
		b, err := d.JSON()
		if err != nil {
			return err
		}
		fmt.Fprintln(cmd.OutOrStdout(), string(b))
	} else {
		printDecision(cmd, d)
	}
	if !d.Allowed {
		for _, r := range d.Reasons {
			fmt.Fprintln(cmd.ErrOrStderr(), "deny: "+r)
		}
		return &invalidError{errors.New("denied: " + d.Image)}
	}
	return nil
}

func printDecision(cmd *cobra.Command, d *policy.Decision) {
	w := cmd.OutOrStdout()
	verdict := "DENY"
	if d.Allowed {
		verdict = "ALLOW"
	}
	cached := ""
	if d.Cached {
		cached = " (cached)"
	}
	fmt.Fprintf(w, "%s %s%s\n", verdict, d.Image, cached)
	for _, c := range d.Candidates {
		mark := "rejected"
		if c.OK {
			mark = "accepted"
		}
		fmt.Fprintf(w, "  referrer %s %s\n", c.Referrer, mark)
		if c.Issuer != "" {
			fmt.Fprintf(w, "    issuer:  %s\n", c.Issuer)
		}
		if c.Payload != "" {
			fmt.Fprintf(w, "    payload: %s\n", c.Payload)
		}
		if len(c.Services) > 0 {
			fmt.Fprintf(w, "    registered with %s at %s\n", strings.Join(c.Services, ", "), c.RegisteredAt.Format("2006-01-02T15:04:05Z07:00"))
		}
		for _, ch := range c.Checks {
			if ch.OK {
				detail := ""
				if ch.Reason != "" {
					detail = ": " + ch.Reason
				}
				fmt.Fprintf(w, "    ok   %s%s\n", ch.Name, detail)
			} else {
				fmt.Fprintf(w, "    FAIL %s: %s\n", ch.Name, ch.Reason)
			}
		}
	}
	if len(d.Candidates) == 0 {
		fmt.Fprintln(w, "  no SCITT statement is attached to this image")
	}
	for _, r := range d.Requirements {
		if r.SatisfiedBy != "" {
			fmt.Fprintf(w, "  required %s: met by %s\n", r.Name, r.SatisfiedBy)
		} else {
			fmt.Fprintf(w, "  required %s: NOT MET\n", r.Name)
		}
	}
}
