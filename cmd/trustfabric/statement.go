package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/trustfabric/trustfabric/pkg/scitt"
)

func init() { register(NewCmdStatement) }

// NewCmdStatement returns `trustfabric statement`.
func NewCmdStatement() *cobra.Command {
	cmd := &cobra.Command{Use: "statement", Short: "Sign and verify SCITT Signed Statements"}
	cmd.AddCommand(newCmdStatementSign(), newCmdStatementVerify())
	return cmd
}

func newCmdStatementSign() *cobra.Command {
	var keyFile, issuer, subject, payloadFile, contentType, location, out string
	var embed bool
	cmd := &cobra.Command{
		Use:   "sign --key PRIVATE_KEY --issuer ISS --subject SUB --payload FILE --out FILE",
		Short: "Sign a payload as a SCITT Signed Statement (COSE hash envelope unless --embed)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			key, err := scitt.LoadPrivateKey(keyFile)
			if err != nil {
				return err
			}
			payload, err := readInput(payloadFile)
			if err != nil {
				return err
			}
			var opts []scitt.SignOption
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
	f.StringVar(&issuer, "issuer", "", "iss claim: who makes the statement (required)")
	f.StringVar(&subject, "subject", "", "sub claim: the artifact, e.g. oci://reg/repo@sha256:… or sha256:… (required)")
	f.StringVar(&payloadFile, "payload", "", "payload file, - for stdin (required)")
	f.StringVar(&contentType, "content-type", "", "payload media type (default: application/vnd.in-toto+json for in-toto statements, else application/octet-stream)")
	f.StringVar(&location, "location", "", "payload location URI (label 260)")
	f.BoolVar(&embed, "embed", false, "carry the payload inline (label 3) instead of a hash envelope")
	f.StringVar(&out, "out", "", "statement file to write (required)")
	for _, n := range []string{"key", "issuer", "subject", "payload", "out"} {
		_ = cmd.MarkFlagRequired(n)
	}
	return cmd
}

func newCmdStatementVerify() *cobra.Command {
	var keyFiles []string
	var payloadFile string
	cmd := &cobra.Command{
		Use:   "verify FILE --key PUBLIC_KEY [--payload FILE]",
		Short: "Verify a Signed Statement's headers and signature (and its preimage with --payload)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			keys, err := loadKeys(keyFiles)
			if err != nil {
				return err
			}
			b, err := readInput(args[0])
			if err != nil {
				return err
			}
			s, err := scitt.ParseStatement(b)
			if err != nil {
				return &invalidError{err}
			}
			var opts []scitt.VerifyOption
			if payloadFile != "" {
				p, err := readInput(payloadFile)
				if err != nil {
					return err
				}
				opts = append(opts, scitt.WithPreimage(p))
			}
			res, err := s.Verify(keys, opts...)
			fmt.Fprint(cmd.OutOrStdout(), res)
			if err != nil {
				return &invalidError{err}
			}
			fmt.Fprintf(cmd.OutOrStdout(), "valid: statement by %s about %s\n", s.Issuer, s.Subject)
			return nil
		},
	}
	cmd.Flags().StringArrayVar(&keyFiles, "key", nil, "issuer public key file: JWK, JWK Set, COSE_Key, COSE_KeySet or PEM (repeatable, required)")
	cmd.Flags().StringVar(&payloadFile, "payload", "", "the preimage, to check the statement covers it")
	_ = cmd.MarkFlagRequired("key")
	return cmd
}
