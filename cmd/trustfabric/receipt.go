package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/trustfabric/trustfabric/pkg/keys"
	"github.com/trustfabric/trustfabric/pkg/scitt"
)

func init() { register(NewCmdReceipt) }

// NewCmdReceipt returns `trustfabric receipt`.
func NewCmdReceipt() *cobra.Command {
	cmd := &cobra.Command{Use: "receipt", Short: "Verify COSE Receipts"}
	cmd.AddCommand(newCmdReceiptVerify())
	return cmd
}

func newCmdReceiptVerify() *cobra.Command {
	var statementFile, receiptFile, leafName string
	var serviceKeys, issuerKeys []string
	cmd := &cobra.Command{
		Use: "verify [TRANSPARENT_FILE] --service-key KEY [--issuer-key KEY] [--leaf ietf|direct]\n" +
			"  trustfabric receipt verify --statement FILE --receipt FILE --service-key KEY",
		Short: "Verify receipts: one given with --receipt, or every receipt in a Transparent Statement",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			leaf, err := scitt.ParseLeafConvention(leafName)
			if err != nil {
				return err
			}
			service, err := loadServiceKeys(cmd.Context(), serviceKeys)
			if err != nil {
				return err
			}
			var issuer keys.Set
			if len(issuerKeys) > 0 {
				if issuer, err = loadKeys(issuerKeys); err != nil {
					return err
				}
			}
			var res *scitt.Result
			switch {
			case len(args) == 1 && statementFile == "" && receiptFile == "":
				stmt, err := readInput(args[0])
				if err != nil {
					return err
				}
				res, err = scitt.VerifyTransparentStatement(stmt, service, leaf, issuer)
				fmt.Fprint(cmd.OutOrStdout(), res)
				if err != nil {
					return &invalidError{err}
				}
			case len(args) == 0 && statementFile != "" && receiptFile != "":
				stmt, err := readInput(statementFile)
				if err != nil {
					return err
				}
				rb, err := readInput(receiptFile)
				if err != nil {
					return err
				}
				if issuer != nil {
					s, err := scitt.ParseStatement(stmt)
					if err != nil {
						return &invalidError{err}
					}
					sr, err := s.Verify(issuer)
					fmt.Fprint(cmd.OutOrStdout(), sr)
					if err != nil {
						return &invalidError{err}
					}
				}
				r, err := scitt.ParseReceipt(rb)
				if err != nil {
					return &invalidError{err}
				}
				res, err = r.VerifyInclusion(stmt, service, leaf)
				fmt.Fprint(cmd.OutOrStdout(), res)
				if err != nil {
					return &invalidError{err}
				}
			default:
				return errors.New("give either a transparent statement file, or --statement and --receipt")
			}
			fmt.Fprintln(cmd.OutOrStdout(), "valid")
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&statementFile, "statement", "", "signed statement the receipt is for")
	f.StringVar(&receiptFile, "receipt", "", "receipt file")
	f.StringArrayVar(&serviceKeys, "service-key", nil, "Transparency Service public key or key set file, or the service URL to fetch its key set from (repeatable, required)")
	f.StringArrayVar(&issuerKeys, "issuer-key", nil, "issuer public key: also verify the statement")
	f.StringVar(&leafName, "leaf", "ietf", "leaf convention of the service: ietf or direct")
	_ = cmd.MarkFlagRequired("service-key")
	return cmd
}
