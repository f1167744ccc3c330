package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/trustfabric/trustfabric/pkg/credential"
	"github.com/trustfabric/trustfabric/pkg/keys"
	"github.com/trustfabric/trustfabric/pkg/oci"
	"github.com/trustfabric/trustfabric/pkg/policy"
	"github.com/trustfabric/trustfabric/pkg/scitt"
	"github.com/trustfabric/trustfabric/pkg/scitt/scrapi"
	"github.com/trustfabric/trustfabric/pkg/sdcwt"
	"github.com/trustfabric/trustfabric/pkg/sdjwt"
)

func init() { register(NewCmdCredential) }

// NewCmdCredential returns `trustfabric credential`: SD-JWT VC credentials
// about verified images (issue, present, verify).
func NewCmdCredential() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "credential",
		Short: "Selective-disclosure credentials (SD-JWT VC or SD-CWT) about verified images: issue, present, verify",
		Example: `  trustfabric credential issue ghcr.io/acme/app@sha256:… --policy policy.yaml --key issuer.jwk --holder-key holder.pub.jwk --out app.sd-jwt
  trustfabric credential present app.sd-jwt --holder-key holder.jwk --disclose builder --aud https://deploy.example --nonce n-42 --out p.sd-jwt
  trustfabric credential verify p.sd-jwt --issuer-key issuer.pub.jwk --aud https://deploy.example --nonce n-42`,
	}
	cmd.AddCommand(newCmdCredentialIssue(), newCmdCredentialPresent(), newCmdCredentialVerify())
	return cmd
}

func newCmdCredentialIssue() *cobra.Command {
	var policyFile, keyFile, holderFile, out, issuer, format, ts, statementOut, output string
	var offline, registerIt, attach bool
	var insecure []string
	var validity time.Duration
	cmd := &cobra.Command{
		Use:   "issue IMAGE[@DIGEST] --policy FILE --key ISSUER_KEY --holder-key HOLDER_PUBLIC_KEY --out FILE [--offline] [--format sd-jwt|sd-cwt] [--register --ts URL [--statement-out FILE] [--attach]]",
		Short: "Run the gate on an image and, when it allows, issue an SD-JWT VC (or SD-CWT) about it bound to the holder's key (exit 1 on deny)",
		Example: `  trustfabric credential issue ghcr.io/acme/app@sha256:… --policy policy.yaml --key issuer.jwk --holder-key holder.pub.jwk --out app.sd-jwt
  trustfabric credential issue ghcr.io/acme/app@sha256:… --policy policy.yaml --key issuer.jwk --holder-key holder.pub.jwk --out app.sd-cwt --format sd-cwt
  trustfabric credential issue ghcr.io/acme/app@sha256:… --policy policy.yaml --key issuer.jwk --holder-key holder.pub.jwk --out app.sd-jwt --register --ts https://ts.example --statement-out app.statement.cose
  trustfabric credential issue ghcr.io/acme/app@sha256:… --policy policy.yaml --key issuer.jwk --holder-key holder.pub.jwk --out app.sd-jwt --output json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if format != formatSDJWT && format != formatSDCWT {
				return fmt.Errorf("--format %q: want %s or %s", format, formatSDJWT, formatSDCWT)
			}
			if registerIt != (ts != "") {
				return errors.New("--register and --ts go together")
			}
			if attach && !registerIt {
				return errors.New("--attach needs --register: it attaches the registered statement")
			}
			if statementOut == "" {
				statementOut = out + ".statement.cose"
			}
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
			var encoded, issuerSigned []byte
			var paths []string
			typ, contentType := sdjwt.TypeVC, credential.ContentTypeSDJWT
			if format == formatSDCWT {
				s, err := credential.IssueCWT(d, key, holder[0], copts...)
				if err != nil {
					return err
				}
				if paths, _, err = s.Paths(); err != nil {
					return err
				}
				encoded, issuerSigned = s.Bytes(), s.Signed()
				typ, contentType = credential.ContentTypeSDCWT, credential.ContentTypeSDCWT
			} else {
				sd, err := credential.Issue(d, key, holder[0], copts...)
				if err != nil {
					return err
				}
				if paths, _, err = sd.Paths(); err != nil {
					return err
				}
				encoded, issuerSigned = []byte(sd.String()+"\n"), []byte(sd.IssuerJWT)
			}
			paths = slices.DeleteFunc(paths, func(p string) bool { return p == "" }) // decoys
			var transparent []byte
			var entryID string
			if registerIt {
				// Anchor the issuance: a statement over the issuer-signed part,
				// registered before anything is written.
				iss := issuer
				if iss == "" {
					iss = credential.DefaultIssuer(key)
				}
				stmt, err := credential.Statement(cmd.Context(), key, iss, credential.Subject(d), contentType, issuerSigned)
				if err != nil {
					return err
				}
				c, err := scrapi.NewClient(ts)
				if err != nil {
					return err
				}
				t, reg, err := c.RegisterTransparent(cmd.Context(), stmt)
				var p *scrapi.Problem
				if errors.As(err, &p) && p.Status >= 400 && p.Status < 500 {
					return &invalidError{fmt.Errorf("the service refused the credential's statement: %w", err)}
				}
				if err != nil {
					return err
				}
				transparent, entryID = t, reg.EntryID
			}
			// The holder's copy carries every disclosure: keep it private.
			if err := writeOutput(out, encoded, 0o600); err != nil {
				return err
			}
			res := credentialIssued{Image: d.Image, Digest: d.Digest, Format: format, Type: typ, Credential: out,
				Disclosable: append([]string{}, paths...), EntryID: entryID}
			w := cmd.OutOrStdout() // the text report; with --output json, notes on stderr
			if output == "json" {
				w = cmd.ErrOrStderr()
			}
			fmt.Fprintf(w, "issued %s credential for %s@%s: %d selectively disclosable claims (%s) -> %s\n",
				typ, d.Image, d.Digest, len(paths), strings.Join(paths, ", "), out)
			if transparent != nil {
				if err := writeOutput(statementOut, transparent, 0o644); err != nil {
					return err
				}
				res.Statement = statementOut
				fmt.Fprintf(w, "registered entry %s at %s -> %s\n", entryID, ts, statementOut)
			}
			if attach {
				st, err := scitt.ParseStatement(transparent)
				if err != nil {
					return err
				}
				var services []string
				for _, rb := range st.Receipts {
					if r, err := scitt.ParseReceipt(rb); err == nil && r.Issuer != "" {
						services = append(services, r.Issuer)
					}
				}
				ref := strings.TrimPrefix(credential.Subject(d), "oci://")
				att, err := client.Attach(cmd.Context(), ref, oci.Attachment{
					Statement: transparent, Preimage: issuerSigned, PreimageMediaType: contentType, PreimageTitle: "credential",
					ArtifactType: credential.ArtifactType,
					Annotations:  oci.Annotations{Issuer: st.Issuer, Subject: st.Subject, TS: services, EntryID: entryID, ContentType: contentType},
				})
				if err != nil {
					return fmt.Errorf("attach: %w", err)
				}
				for _, a := range att {
					res.Referrers = append(res.Referrers, a.Referrer)
					fmt.Fprintf(w, "attached %s to %s (%s)\n", a.Referrer, a.Subject, credential.ArtifactType)
				}
			}
			if output == "json" {
				return writeJSON(cmd.OutOrStdout(), res)
			}
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
	f.StringVar(&format, "format", formatSDJWT, "credential format: sd-jwt (SD-JWT VC, text) or sd-cwt (SD-CWT, binary CBOR)")
	f.BoolVar(&registerIt, "register", false, "register a Signed Statement about the credential (hash envelope over its issuer-signed part) with --ts")
	f.StringVar(&ts, "ts", "", "Transparency Service base URL (with --register)")
	f.StringVar(&statementOut, "statement-out", "", "where to write the Transparent Statement of --register (default OUT.statement.cose)")
	f.BoolVar(&attach, "attach", false, "attach the registered statement and the credential's issuer-signed part (no disclosures) to the image as a referrer of type "+credential.ArtifactType)
	f.StringArrayVar(&insecure, "insecure-registry", nil, "registry host:port to reach over plain HTTP (repeatable)")
	addOutputFlag(cmd, &output)
	for _, n := range []string{"policy", "key", "holder-key", "out"} {
		_ = cmd.MarkFlagRequired(n)
	}
	return cmd
}

// credentialIssued is the --output json of `credential issue`
// (docs/cli-json.md).
type credentialIssued struct {
	Image       string   `json:"image"`
	Digest      string   `json:"digest"`
	Format      string   `json:"format"` // sd-jwt or sd-cwt
	Type        string   `json:"type"`   // the credential's media type
	Credential  string   `json:"credential"`
	Disclosable []string `json:"disclosable"`
	EntryID     string   `json:"entryId,omitempty"`
	Statement   string   `json:"statement,omitempty"`
	Referrers   []string `json:"referrers,omitempty"`
}

func newCmdCredentialPresent() *cobra.Command {
	var holderFile, aud, nonce, out, format string
	var disclose []string
	cmd := &cobra.Command{
		Use:     "present FILE --holder-key KEY --disclose NAME[,NAME...] --aud AUD --nonce NONCE --out FILE",
		Short:   "Make a presentation of a credential with only the named claims and a Key Binding JWT for one verifier",
		Example: `  trustfabric credential present app.sd-jwt --holder-key holder.jwk --disclose builder,source_repository --aud https://deploy.example --nonce n-42 --out p.sd-jwt`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			holder, err := keys.LoadPrivate(holderFile)
			if err != nil {
				return fmt.Errorf("--holder-key: %w", err)
			}
			b, isCWT, err := readCredential(args[0], format)
			if err != nil {
				return err
			}
			if isCWT {
				s, err := sdcwt.Parse(b)
				if err != nil {
					return err
				}
				sel, err := s.Select(disclose)
				if err != nil {
					return err
				}
				kbt, err := sel.Present(holder, sdcwt.Presentation{Audience: aud, Nonce: nonce})
				if err != nil {
					return err
				}
				if err := writeOutput(out, kbt, 0o644); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "presentation (SD-KBT) for %s with %d of %d disclosures -> %s\n", aud, len(sel.Disclosures), len(s.Disclosures), out)
				return nil
			}
			sd, err := parseSDJWT(b)
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
	f.StringVar(&format, "format", "", "credential format: sd-jwt or sd-cwt (default: recognised from the file)")
	for _, n := range []string{"holder-key", "aud", "nonce", "out"} {
		_ = cmd.MarkFlagRequired(n)
	}
	return cmd
}

func newCmdCredentialVerify() *cobra.Command {
	var issuerKeys, requires, serviceKeys []string
	var aud, nonce, output, format, statementFile string
	cmd := &cobra.Command{
		Use:   "verify FILE --issuer-key KEY [--aud AUD --nonce NONCE] [--require NAME=VALUE]... [--service-key KEY --statement FILE] [--output json]",
		Short: "Verify a credential presentation: issuer signature, disclosures, key binding, times; print the disclosed claims",
		Example: `  trustfabric credential verify p.sd-jwt --issuer-key issuer.pub.jwk --aud https://deploy.example --nonce n-42
  trustfabric credential verify p.sd-jwt --issuer-key issuer.pub.jwk --aud https://deploy.example --nonce n-42 --require builder=https://github.com/acme/app/.github/workflows/release.yml@refs/heads/main --output json
  trustfabric credential verify p.sd-jwt --issuer-key issuer.pub.jwk --service-key https://ts.example --statement app.statement.cose`,
		Args: cobra.ExactArgs(1),
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
			if (len(serviceKeys) > 0) != (statementFile != "") {
				return errors.New("--service-key and --statement go together")
			}
			var service keys.Set
			var transparent []byte
			if len(serviceKeys) > 0 {
				if service, err = loadServiceKeys(cmd.Context(), serviceKeys); err != nil {
					return fmt.Errorf("--service-key: %w", err)
				}
				if transparent, err = readInput(statementFile); err != nil {
					return err
				}
			}
			b, isCWT, err := readCredential(args[0], format)
			if err != nil {
				return err
			}
			var v *credential.Verified
			if isCWT {
				var opts []sdcwt.VerifyOption
				if aud != "" {
					opts = append(opts, sdcwt.WithAudience(aud))
				}
				if nonce != "" {
					opts = append(opts, sdcwt.WithNonce(nonce))
				}
				if v, err = credential.VerifyCWT(b, ks, require, opts...); err != nil {
					var ve *sdcwt.VerifyError
					if errors.As(err, &ve) {
						return &invalidError{err}
					}
					return err
				}
			} else {
				sd, err := parseSDJWT(b)
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
				if v, err = credential.Verify(sd, ks, require, opts...); err != nil {
					var ve *sdjwt.VerifyError
					if errors.As(err, &ve) {
						return &invalidError{err}
					}
					return err
				}
			}
			if transparent != nil {
				if err := credential.VerifyAnchor(transparent, v, service, ks); err != nil {
					return &invalidError{err}
				}
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
			if transparent != nil {
				fmt.Fprintln(w, "  issuance registered: a receipt verifies under the service key")
			}
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
	addOutputFlag(cmd, &output)
	f.StringVar(&format, "format", "", "presentation format: sd-jwt or sd-cwt (default: recognised from the file)")
	f.StringArrayVar(&serviceKeys, "service-key", nil, "Transparency Service key (file or URL, repeatable): also check that --statement, the credential's registered statement, has a receipt")
	f.StringVar(&statementFile, "statement", "", "the Transparent Statement written by credential issue --register (with --service-key)")
	_ = cmd.MarkFlagRequired("issuer-key")
	return cmd
}

// Credential formats (--format).
const (
	formatSDJWT = "sd-jwt"
	formatSDCWT = "sd-cwt"
)

// readCredential reads a credential or presentation file and tells whether
// it is an SD-CWT (binary CBOR, a tagged COSE_Sign1) or an SD-JWT (text).
// format, when given, must agree with the contents.
func readCredential(path, format string) ([]byte, bool, error) {
	if format != "" && format != formatSDJWT && format != formatSDCWT {
		return nil, false, fmt.Errorf("--format %q: want %s or %s", format, formatSDJWT, formatSDCWT)
	}
	b, err := readInput(path)
	if err != nil {
		return nil, false, err
	}
	isCWT := len(b) > 0 && b[0] == 0xd2 // CBOR tag 18, COSE_Sign1
	switch {
	case format == formatSDCWT && !isCWT:
		return nil, false, &invalidError{fmt.Errorf("%s: %w: %s is not a tagged COSE_Sign1", sdcwt.CheckFormat, sdcwt.ErrMalformed, path)}
	case format == formatSDJWT && isCWT:
		return nil, false, &invalidError{fmt.Errorf("%s: %w: %s is CBOR, not an SD-JWT", sdjwt.CheckFormat, sdjwt.ErrMalformed, path)}
	}
	return b, isCWT, nil
}

// parseSDJWT parses a credential or presentation in the compact or the
// JSON serialization.
func parseSDJWT(b []byte) (*sdjwt.SDJWT, error) {
	b = bytes.TrimSpace(b)
	if bytes.HasPrefix(b, []byte("{")) {
		return sdjwt.ParseJSON(b)
	}
	return sdjwt.Parse(string(b))
}
