package main

import (
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/trustfabric/trustfabric/pkg/keys"
	"github.com/trustfabric/trustfabric/pkg/scitt"
	"github.com/trustfabric/trustfabric/pkg/wimse"
	"github.com/trustfabric/trustfabric/pkg/witstatement"
	"github.com/trustfabric/trustfabric/pkg/workload"
)

func init() { register(NewCmdStatement) }

// NewCmdStatement returns `trustfabric statement`.
func NewCmdStatement() *cobra.Command {
	cmd := &cobra.Command{Use: "statement", Short: "Sign and verify SCITT Signed Statements", Example: `  trustfabric statement sign --key issuer.jwk --issuer https://acme.example --subject sha256:… --payload p.json --out s.cose
  trustfabric statement verify s.cose --key issuer.pub.jwk`}
	cmd.AddCommand(newCmdStatementSign(), newCmdStatementVerify())
	return cmd
}

func newCmdStatementSign() *cobra.Command {
	var keyFile, issuer, subject, payloadFile, contentType, location, out, witFile string
	var embed bool
	cmd := &cobra.Command{
		Use:   "sign --key PRIVATE_KEY --issuer ISS --subject SUB --payload FILE --out FILE",
		Short: "Sign a payload as a SCITT Signed Statement (COSE hash envelope unless --embed)",
		Example: `  trustfabric statement sign --key issuer.jwk --issuer https://acme.example --subject sha256:… --payload provenance.json --out app.cose
  trustfabric statement sign --key wit.jwk --wit wit.jwt --subject oci://ghcr.io/acme/app@sha256:… --payload sbom.json --out sbom.cose`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			key, err := keys.LoadPrivate(keyFile)
			if err != nil {
				return err
			}
			var opts []scitt.SignOption
			if witFile != "" {
				// A workload signs with its WIT's key; the statement's iss
				// is the WIT's sub (design §2.1).
				wit, err := workload.ReadWIT(witFile)
				if err != nil {
					return err
				}
				id, err := witstatement.Issuer(wit, key.Signer.Public())
				if err != nil {
					return fmt.Errorf("--wit and --key do not belong together: %w", err)
				}
				if issuer != "" && issuer != id.String() {
					return fmt.Errorf("--issuer %q: a statement signed with a WIT must have iss = the WIT's sub %q (omit --issuer)", issuer, id)
				}
				issuer = id.String()
				opts = append(opts, scitt.WithWIT(wit))
			} else if issuer == "" {
				return errors.New("--issuer is required (or --wit, whose sub becomes the issuer)")
			}
			payload, err := readInput(payloadFile)
			if err != nil {
				return err
			}
			if contentType != "" {
				opts = append(opts, scitt.WithContentType(contentType))
			}
			if location != "" {
				opts = append(opts, scitt.WithLocation(location))
			}
			if embed {
				opts = append(opts, scitt.WithEmbeddedPayload())
			}
			stmt, err := scitt.SignStatement(cmd.Context(), key, scitt.Claims{Issuer: issuer, Subject: subject, IssuedAt: time.Now()}, payload, opts...)
			if err != nil {
				return err
			}
			if err := writeOutput(out, stmt, 0o644); err != nil {
				return err
			}
			e, _ := scitt.EntryHash(stmt)
			fmt.Fprintf(cmd.ErrOrStderr(), "signed statement %s (%d bytes), entry %x\n", out, len(stmt), e)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&keyFile, "key", "", "private key file: JWK, COSE_Key or PEM (required)")
	f.StringVar(&issuer, "issuer", "", "iss claim: who makes the statement (required unless --wit)")
	f.StringVar(&witFile, "wit", "", "Workload Identity Token file (from trustfabric identity): put it in the statement; --key is its key")
	f.StringVar(&subject, "subject", "", "sub claim: the artifact, e.g. oci://reg/repo@sha256:… or sha256:… (required)")
	f.StringVar(&payloadFile, "payload", "", "payload file, - for stdin (required)")
	f.StringVar(&contentType, "content-type", "", "payload media type (default: application/vnd.in-toto+json for in-toto statements, else application/octet-stream)")
	f.StringVar(&location, "location", "", "payload location URI (label 260)")
	f.BoolVar(&embed, "embed", false, "carry the payload inline (label 3) instead of a hash envelope")
	f.StringVar(&out, "out", "", "statement file to write (required)")
	for _, n := range []string{"key", "subject", "payload", "out"} {
		_ = cmd.MarkFlagRequired(n)
	}
	return cmd
}

func newCmdStatementVerify() *cobra.Command {
	var keyFiles, serviceKeys []string
	var payloadFile, bundleFile, trustDomain, leafName, output string
	cmd := &cobra.Command{
		Use: "verify FILE (--key PUBLIC_KEY | --identity-bundle FILE --trust-domain TD [--service-key KEY]) [--payload FILE] [--output json]",
		Short: "Verify a Signed Statement: with an issuer key, or, for a statement signed by a workload, " +
			"with the identity bundle (the WIT must have been valid when the statement was registered)",
		Example: `  trustfabric statement verify app.cose --key issuer.pub.jwk --payload provenance.json
  trustfabric statement verify app.cose --identity-bundle bundle.jwks --trust-domain acme.example --service-key https://ts.example
  trustfabric statement verify app.cose --key issuer.pub.jwk --output json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			b, err := readInput(args[0])
			if err != nil {
				return err
			}
			var preimage []byte
			if payloadFile != "" {
				if preimage, err = readInput(payloadFile); err != nil {
					return err
				}
			}
			if bundleFile != "" {
				return verifyWITStatement(cmd, b, preimage, bundleFile, trustDomain, serviceKeys, leafName, output)
			}
			if len(keyFiles) == 0 {
				return errors.New("give --key, or --identity-bundle and --trust-domain for a statement signed with a WIT")
			}
			keys, err := loadKeys(keyFiles)
			if err != nil {
				return err
			}
			s, err := scitt.ParseStatement(b)
			if err != nil {
				return reportChecks(cmd, output, newVerifyReport(nil, err), nil, err, "")
			}
			var opts []scitt.VerifyOption
			if preimage != nil {
				opts = append(opts, scitt.WithPreimage(preimage))
			}
			res, err := s.Verify(keys, opts...)
			rep := newVerifyReport(res, err)
			rep.Issuer, rep.Subject = s.Issuer, s.Subject
			return reportChecks(cmd, output, rep, res, err, fmt.Sprintf("valid: statement by %s about %s", s.Issuer, s.Subject))
		},
	}
	f := cmd.Flags()
	f.StringArrayVar(&keyFiles, "key", nil, "issuer public key file: JWK, JWK Set, COSE_Key, COSE_KeySet or PEM (repeatable)")
	f.StringVar(&payloadFile, "payload", "", "the preimage, to check the statement covers it")
	f.StringVar(&bundleFile, "identity-bundle", "", "WIT bundle (JWK Set from the Identity Server's /.well-known/wit-bundle), for statements signed with a WIT")
	f.StringVar(&trustDomain, "trust-domain", "", "trust domain of --identity-bundle")
	f.StringArrayVar(&serviceKeys, "service-key", nil, "Transparency Service key, key set file or URL: the WIT is checked at the registration time of a receipt that must verify under it (without this flag: at the statement's iat)")
	f.StringVar(&leafName, "leaf", "ietf", "leaf convention of the service: ietf or direct")
	addOutputFlag(cmd, &output)
	return cmd
}

func verifyWITStatement(cmd *cobra.Command, stmt, preimage []byte, bundleFile, trustDomain string, serviceKeys []string, leafName, output string) error {
	if trustDomain == "" {
		return errors.New("--identity-bundle needs --trust-domain")
	}
	raw, err := readInput(bundleFile)
	if err != nil {
		return err
	}
	bundle, err := wimse.ParseBundle(trustDomain, raw)
	if err != nil {
		return err
	}
	var opts []witstatement.Option
	if preimage != nil {
		opts = append(opts, witstatement.WithPreimage(preimage))
	}
	if len(serviceKeys) > 0 {
		leaf, err := scitt.ParseLeafConvention(leafName)
		if err != nil {
			return err
		}
		keys, err := loadServiceKeys(cmd.Context(), serviceKeys)
		if err != nil {
			return err
		}
		opts = append(opts, witstatement.WithReceipts(keys, leaf))
	}
	id, err := witstatement.Verify(stmt, wimse.Bundles{bundle}, opts...)
	var res *scitt.Result
	if id != nil {
		res = id.Result
	}
	rep := newVerifyReport(res, err)
	if err != nil {
		return reportChecks(cmd, output, rep, res, err, "")
	}
	at := id.CheckedAt.UTC()
	rep.Issuer, rep.Subject = id.Statement.Issuer, id.Statement.Subject
	rep.WorkloadID, rep.WITValidAt, rep.WITTimeSource = id.WIT.ID.String(), &at, id.Source
	return reportChecks(cmd, output, rep, res, nil, fmt.Sprintf("valid: statement by workload %s about %s; WIT valid at %s (%s)",
		id.WIT.ID, id.Statement.Subject, id.CheckedAt.Format(time.RFC3339), id.Source))
}
