package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/trustfabric/trustfabric/pkg/keys"
	"github.com/trustfabric/trustfabric/pkg/scitt"
	"github.com/trustfabric/trustfabric/pkg/scitt/scrapi"
)

func init() { register(NewCmdReceipt) }

// NewCmdReceipt returns `trustfabric receipt`.
func NewCmdReceipt() *cobra.Command {
	cmd := &cobra.Command{Use: "receipt", Short: "Verify COSE Receipts", Example: `  trustfabric receipt verify app.transparent.cose --service-key https://ts.example`}
	cmd.AddCommand(newCmdReceiptVerify())
	return cmd
}

func newCmdReceiptVerify() *cobra.Command {
	var statementFile, receiptFile, leafName, output string
	var serviceKeys, issuerKeys []string
	cmd := &cobra.Command{
		Use: "verify [TRANSPARENT_FILE] --service-key KEY [--issuer-key KEY] [--leaf auto|ietf|direct] [--output json]\n" +
			"  trustfabric receipt verify --statement FILE --receipt FILE --service-key KEY",
		Short: "Verify receipts: one given with --receipt, or every receipt in a Transparent Statement",
		Example: `  trustfabric receipt verify app.transparent.cose --service-key https://ts.example
  trustfabric receipt verify --statement app.cose --receipt app.receipt --service-key ts.jwks --issuer-key issuer.pub.jwk
  trustfabric receipt verify app.transparent.cose --service-key ts.jwks --output json`,
		Long: `Verify receipts: one given with --receipt, or every receipt in a Transparent Statement.

RFC 9162 (vds 1) receipts need the leaf convention of the service that issued
them. With --leaf auto (the default) it is taken from the service's
configuration document when --service-key is the service's URL, else from the
receipt (Trustfabric receipts name it), else ietf then direct are tried.
CCF receipts (vds 2, Azure Code Transparency) have their own leaf.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			leaf, err := scitt.ParseLeafConvention(leafName)
			if err != nil {
				return err
			}
			service, err := loadServiceKeys(cmd.Context(), serviceKeys)
			if err != nil {
				return err
			}
			if leaf == scitt.LeafAuto {
				if leaf, err = leafFromMetadata(cmd.Context(), serviceKeys, cmd.ErrOrStderr()); err != nil {
					return err
				}
			}
			var issuer keys.Set
			if len(issuerKeys) > 0 {
				if issuer, err = loadKeys(issuerKeys); err != nil {
					return err
				}
			}
			var (
				stmt []byte
				res  *scitt.Result
			)
			switch {
			case len(args) == 1 && statementFile == "" && receiptFile == "":
				if stmt, err = readInput(args[0]); err != nil {
					return err
				}
				res, err = scitt.VerifyTransparentStatement(stmt, service, leaf, issuer)
			case len(args) == 0 && statementFile != "" && receiptFile != "":
				if stmt, err = readInput(statementFile); err != nil {
					return err
				}
				rb, rerr := readInput(receiptFile)
				if rerr != nil {
					return rerr
				}
				res, err = scitt.VerifyDetachedReceipt(stmt, rb, service, leaf, issuer)
			default:
				return errors.New("give either a transparent statement file, or --statement and --receipt")
			}
			rep := newVerifyReport(res, err)
			if s, perr := scitt.ParseStatement(stmt); perr == nil {
				rep.Issuer, rep.Subject = s.Issuer, s.Subject
			}
			return reportChecks(cmd, output, rep, res, err, "valid")
		},
	}
	f := cmd.Flags()
	f.StringVar(&statementFile, "statement", "", "signed statement the receipt is for")
	f.StringVar(&receiptFile, "receipt", "", "receipt file")
	f.StringArrayVar(&serviceKeys, "service-key", nil, "Transparency Service public key or key set file, or the service URL to fetch its key set from (repeatable, required)")
	f.StringArrayVar(&issuerKeys, "issuer-key", nil, "issuer public key: also verify the statement")
	f.StringVar(&leafName, "leaf", "auto", "leaf convention of the service: auto (from the service's metadata or the receipt), ietf or direct")
	_ = cmd.MarkFlagRequired("service-key")
	addOutputFlag(cmd, &output)
	return cmd
}

// leafFromMetadata reads the leaf convention from the configuration document
// of each service given by URL. It returns LeafAuto (decide per receipt)
// when no service says, or when services say different things; services
// that serve no configuration document (most peers) are skipped.
func leafFromMetadata(ctx context.Context, sources []string, log io.Writer) (scitt.LeafConvention, error) {
	found := map[scitt.LeafConvention]string{}
	for _, src := range sources {
		if !strings.HasPrefix(src, "https://") && !strings.HasPrefix(src, "http://") {
			continue
		}
		cfg, err := scrapi.FetchConfiguration(ctx, src)
		if err != nil {
			fmt.Fprintf(log, "note: %s: no leaf convention from its configuration (%v)\n", src, err)
			continue
		}
		if cfg.LeafConvention == "" {
			continue
		}
		c, err := scitt.ParseLeafConvention(cfg.LeafConvention)
		if err != nil || c == scitt.LeafAuto {
			return 0, fmt.Errorf("%s names leaf convention %q in its configuration, which this verifier does not implement (ietf, direct); pass --leaf", src, cfg.LeafConvention)
		}
		found[c] = src
	}
	if len(found) != 1 {
		return scitt.LeafAuto, nil
	}
	for c, src := range found {
		fmt.Fprintf(log, "leaf convention %s, from %s/.well-known/transparency-configuration\n", c, strings.TrimRight(src, "/"))
		return c, nil
	}
	return scitt.LeafAuto, nil
}
