package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/trustfabric/trustfabric/pkg/credential"
	"github.com/trustfabric/trustfabric/pkg/keys"
	"github.com/trustfabric/trustfabric/pkg/oci"
	"github.com/trustfabric/trustfabric/pkg/policy"
	"github.com/trustfabric/trustfabric/pkg/sdjwt"
)

func init() { register(NewCmdCredential) }

// NewCmdCredential returns `trustfabric credential`: SD-JWT VC credentials
// about verified images (issue, present, verify).
func NewCmdCredential() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "credential",
		Short: "Selective-disclosure credentials (SD-JWT VC) about verified images: issue, present, verify",
	}
	cmd.AddCommand(newCmdCredentialIssue(), newCmdCredentialPresent(), newCmdCredentialVerify())
	return cmd
}

func newCmdCredentialIssue() *cobra.Command {
	var policyFile, keyFile, holderFile, out, issuer string
	var offline bool
	var insecure []string
	var validity time.Duration
	cmd := &cobra.Command{
		Use:   "issue IMAGE[@DIGEST] --policy FILE --key ISSUER_KEY --holder-key HOLDER_PUBLIC_KEY --out FILE [--offline]",
		Short: "Run the gate on an image and, when it allows, issue an SD-JWT VC about it bound to the holder's key (exit 1 on deny)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			key, err := keys.LoadPrivate(keyFile)
			if err != nil {
				return fmt.Errorf("--key: %w", err)
			}
			holder, err := keys.LoadPublic(holderFile)
			if err != nil {
				return fmt.Errorf("--holder-key: %w", err)
			}
			if len(holder) != 1 {
				return fmt.Errorf("--holder-key: %s holds %d keys, want one", holderFile, len(holder))
			}
			p, err := policy.Load(policyFile)
			if err != nil {
				return err
			}
			var ociOpts []oci.Option
			for _, h := range insecure {
				ociOpts = append(ociOpts, oci.WithInsecureRegistry(h))
			}
			client, err := oci.New(ociOpts...)
			if err != nil {
				return err
			}
			opts := []policy.Option{policy.WithOCIClient(client)}
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
			if !d.Allowed {
				for _, r := range d.Reasons {
					fmt.Fprintln(cmd.ErrOrStderr(), "deny: "+r)
				}
				return &invalidError{fmt.Errorf("%w: %s: no credential issued", credential.ErrDenied, d.Image)}
			}
			copts := []credential.Option{credential.WithPolicyName(strings.TrimSuffix(filepath.Base(policyFile), filepath.Ext(policyFile)))}
			if issuer != "" {
				copts = append(copts, credential.WithIssuer(issuer))
			}
			if validity != 0 {
				copts = append(copts, credential.WithValidity(validity))
			}
			sd, err := credential.Issue(d, key, holder[0], copts...)
			if err != nil {
				return err
			}
			// The holder's copy carries every disclosure: keep it private.
			if err := writeOutput(out, []byte(sd.String()+"\n"), 0o600); err != nil {
				return err
			}
			paths, _, err := sd.Paths()
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "issued %s credential for %s@%s: %d selectively disclosable claims (%s) -> %s\n",
				sdjwt.TypeVC, d.Image, d.Digest, len(paths), strings.Join(paths, ", "), out)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&policyFile, "policy", "", "verification policy file; the gate must allow the image (required)")
	f.StringVar(&keyFile, "key", "", "issuer signing key (JWK, COSE_Key or PEM) (required)")
	f.StringVar(&holderFile, "holder-key", "", "holder's public key, bound into cnf (required)")
	f.StringVar(&out, "out", "", "credential file to write (required)")
	f.StringVar(&issuer, "issuer", "", "iss claim, a URI (default urn:trustfabric:issuer:<key thumbprint>)")
	f.DurationVar(&validity, "validity", credential.DefaultValidity, "credential lifetime (exp - iat)")
	f.BoolVar(&offline, "offline", false, "use only pinned keys and bundle files, and the registry")
	f.StringArrayVar(&insecure, "insecure-registry", nil, "registry host:port to reach over plain HTTP (repeatable)")
	for _, n := range []string{"policy", "key", "holder-key", "out"} {
		_ = cmd.MarkFlagRequired(n)
	}
	return cmd
}

func newCmdCredentialPresent() *cobra.Command {
	var holderFile, aud, nonce, out string
	var disclose []string
	cmd := &cobra.Command{
		Use:   "present FILE --holder-key KEY --disclose NAME[,NAME...] --aud AUD --nonce NONCE --out FILE",
		Short: "Make a presentation of a credential with only the named claims and a Key Binding JWT for one verifier",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			holder, err := keys.LoadPrivate(holderFile)
			if err != nil {
				return fmt.Errorf("--holder-key: %w", err)
			}
			sd, err := readSDJWT(args[0])
			if err != nil {
				return err
			}
			sel, err := sd.Select(disclose)
			if err != nil {
				return err
			}
			p, err := sel.Present(holder, sdjwt.Presentation{Audience: aud, Nonce: nonce})
			if err != nil {
				return err
			}
			if err := writeOutput(out, []byte(p.String()+"\n"), 0o644); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "presentation for %s with %d of %d disclosures -> %s\n", aud, len(p.Disclosures), len(sd.Disclosures), out)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&holderFile, "holder-key", "", "holder's private key, the one in the credential's cnf (required)")
	f.StringSliceVar(&disclose, "disclose", nil, "claims to disclose, comma-separated (nested: a.b); the always-disclosed ones need not be named")
	f.StringVar(&aud, "aud", "", "the verifier (KB-JWT aud) (required)")
	f.StringVar(&nonce, "nonce", "", "the verifier's nonce (required)")
	f.StringVar(&out, "out", "", "presentation file to write (required)")
	for _, n := range []string{"holder-key", "aud", "nonce", "out"} {
		_ = cmd.MarkFlagRequired(n)
	}
	return cmd
}

func newCmdCredentialVerify() *cobra.Command {
	var issuerKeys, requires []string
	var aud, nonce, output string
	cmd := &cobra.Command{
		Use:   "verify FILE --issuer-key KEY [--aud AUD --nonce NONCE] [--require NAME=VALUE]... [--output json]",
		Short: "Verify a credential presentation: issuer signature, disclosures, key binding, times; print the disclosed claims",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if output != "text" && output != "json" {
				return fmt.Errorf("--output %q: want text or json", output)
			}
			ks, err := loadKeys(issuerKeys)
			if err != nil {
				return fmt.Errorf("--issuer-key: %w", err)
			}
			require := map[string]string{}
			for _, r := range requires {
				k, v, ok := strings.Cut(r, "=")
				if !ok || k == "" {
					return fmt.Errorf("--require %q: want NAME=VALUE", r)
				}
				require[k] = v
			}
			sd, err := readSDJWT(args[0])
			if err != nil {
				if errors.Is(err, sdjwt.ErrMalformed) {
					return &invalidError{fmt.Errorf("%s: %w", sdjwt.CheckFormat, err)}
				}
				return err
			}
			var opts []sdjwt.VerifyOption
			if aud != "" {
				opts = append(opts, sdjwt.WithAudience(aud))
			}
			if nonce != "" {
				opts = append(opts, sdjwt.WithNonce(nonce))
			}
			v, err := credential.Verify(sd, ks, require, opts...)
			if err != nil {
				var ve *sdjwt.VerifyError
				if errors.As(err, &ve) {
					return &invalidError{err}
				}
				return err
			}
			w := cmd.OutOrStdout()
			if output == "json" {
				b, err := json.MarshalIndent(v, "", "  ")
				if err != nil {
					return err
				}
				fmt.Fprintln(w, string(b))
				return nil
			}
			fmt.Fprintf(w, "VALID credential from %s (presented to %s)\n", v.Issuer, v.Audience)
			names := make([]string, 0, len(v.Claims))
			for k := range v.Claims {
				if k != "cnf" {
					names = append(names, k)
				}
			}
			sort.Strings(names)
			for _, k := range names {
				b, _ := json.Marshal(v.Claims[k])
				fmt.Fprintf(w, "  %s: %s\n", k, b)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringArrayVar(&issuerKeys, "issuer-key", nil, "pinned issuer public key file (repeatable) (required)")
	f.StringVar(&aud, "aud", "", "require this audience in the Key Binding JWT")
	f.StringVar(&nonce, "nonce", "", "require this nonce in the Key Binding JWT")
	f.StringArrayVar(&requires, "require", nil, "NAME=VALUE a disclosed claim must have (repeatable; nested: policy.name=...)")
	f.StringVarP(&output, "output", "o", "text", "output format: text or json")
	_ = cmd.MarkFlagRequired("issuer-key")
	return cmd
}

// readSDJWT reads a credential or presentation in the compact or the JSON
// serialization.
func readSDJWT(path string) (*sdjwt.SDJWT, error) {
	b, err := readInput(path)
	if err != nil {
		return nil, err
	}
	b = bytes.TrimSpace(b)
	if bytes.HasPrefix(b, []byte("{")) {
		return sdjwt.ParseJSON(b)
	}
	return sdjwt.Parse(string(b))
}
