package main

import (
	"fmt"
	"io"
	"sort"

	"github.com/spf13/cobra"

	"github.com/trustfabric/trustfabric/pkg/keys"
	"github.com/trustfabric/trustfabric/pkg/policy"
)

func init() { register(NewCmdPolicy) }

// NewCmdPolicy returns `trustfabric policy`.
func NewCmdPolicy() *cobra.Command {
	cmd := &cobra.Command{Use: "policy", Short: "Work with verification policies"}
	check := &cobra.Command{
		Use:   "check FILE",
		Short: "Validate a verification policy and print what it trusts",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := policy.Load(args[0])
			if err != nil {
				return err
			}
			// Load every key and bundle the policy names (offline), so that
			// a missing or malformed file is reported now.
			issuers, err := p.CredentialIssuers()
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			if p.CredentialOnly() {
				fmt.Fprintf(w, "%s: valid (sha256 %x), decides on credentials only\n", args[0], p.Hash())
				printCredentialRules(w, p, issuers)
				return nil
			}
			if _, err := policy.NewVerifier(cmd.Context(), p, policy.WithOffline()); err != nil {
				return err
			}
			fmt.Fprintf(w, "%s: valid (sha256 %x)\n", args[0], p.Hash())
			defer printCredentialRules(w, p, issuers)
			fmt.Fprintf(w, "transparency services (%d receipt(s) required):\n", p.RequiredReceipts)
			for _, ts := range p.TransparencyServices {
				fmt.Fprintf(w, "  - %s leaf=%s keys=%v inline=%d url=%s\n", orDash(ts.Issuer), orDefault(ts.Leaf, "ietf"), ts.Keys, len(ts.InlineKeys), orDash(ts.URL))
			}
			if p.MaxReceiptAge > 0 {
				fmt.Fprintf(w, "receipts older than %s are refused\n", p.MaxReceiptAge.String())
			}
			fmt.Fprintln(w, "identity trust domains:")
			for _, d := range p.Identities {
				fmt.Fprintf(w, "  - %s bundle=%s\n", d.TrustDomain, orDefault(d.Bundle, d.BundleURL))
			}
			for _, is := range p.Issuers {
				fmt.Fprintf(w, "static issuer: %s keys=%v\n", is.Issuer, is.Keys)
			}
			fmt.Fprintln(w, "allowed workloads:")
			for _, wl := range p.Workloads {
				fmt.Fprintf(w, "  - %s", wl)
				for k, v := range wl.Require {
					fmt.Fprintf(w, " %s=%s", k, v)
				}
				fmt.Fprintln(w)
			}
			pr := p.Provenance
			fmt.Fprintf(w, "provenance: predicateTypes=%v builderIDs=%v sourceRepositories=%v refs=%v triggers=%v\n",
				pr.PredicateTypes, pr.BuilderIDs, pr.SourceRepositories, pr.Refs, pr.Triggers)
			for _, list := range []struct {
				what  string
				rules []policy.PayloadRule
			}{{"required", p.Payloads.Require}, {"allowed", p.Payloads.Allow}} {
				for _, r := range list.rules {
					fmt.Fprintf(w, "%s statement %s: predicateTypes=%v contentTypes=%v\n", list.what, r, r.PredicateTypes, r.ContentTypes)
				}
			}
			return nil
		},
	}
	cmd.AddCommand(check)
	return cmd
}

func orDash(s string) string { return orDefault(s, "-") }

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

// printCredentialRules prints a policy's credentials section, if any.
func printCredentialRules(w io.Writer, p *policy.Policy, issuers map[string]keys.Set) {
	if p.Credentials == nil {
		return
	}
	fmt.Fprintf(w, "credentials (audience %s):\n", orDash(p.Credentials.Audience))
	for _, is := range p.Credentials.Issuers {
		fmt.Fprintf(w, "  - issuer %s (%d key(s))\n", is.Issuer, len(issuers[is.Issuer]))
	}
	names := make([]string, 0, len(p.Credentials.Require))
	for n := range p.Credentials.Require {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  require %s in %v\n", n, p.Credentials.Require[n])
	}
}
