package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/trustfabric/trustfabric/pkg/keys"
)

func init() { register(NewCmdKey) }

// NewCmdKey returns `trustfabric key`.
func NewCmdKey() *cobra.Command {
	cmd := &cobra.Command{Use: "key", Short: "Generate and convert signing keys", Example: `  trustfabric key generate --out issuer.jwk --public-out issuer.pub.jwk`}
	cmd.AddCommand(newCmdKeyGenerate())
	return cmd
}

func newCmdKeyGenerate() *cobra.Command {
	var out, pubOut, alg, format, output string
	cmd := &cobra.Command{
		Use:   "generate --out FILE [--public-out FILE] [--alg ES256]",
		Short: "Generate a private key (JWK, mode 0600) and its public key",
		Example: `  trustfabric key generate --out issuer.jwk --public-out issuer.pub.jwk
  trustfabric key generate --alg ES384 --format cose --out issuer.cose`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			a, err := keys.ParseStatementAlgorithm(alg)
			if err != nil {
				return fmt.Errorf("--alg: %w", err)
			}
			k, err := keys.Generate(a)
			if err != nil {
				return err
			}
			var priv, pub []byte
			switch format {
			case "jwk":
				if priv, err = k.MarshalJWK(); err == nil {
					pub, err = k.Public().MarshalJWK()
				}
			case "cose":
				if priv, err = k.MarshalCOSEKey(); err == nil {
					pub, err = k.Public().MarshalCOSEKey()
				}
			default:
				return fmt.Errorf("--format %q: want jwk or cose", format)
			}
			if err != nil {
				return err
			}
			if err := writeOutput(out, priv, 0o600); err != nil {
				return err
			}
			if pubOut != "" {
				if err := writeOutput(pubOut, pub, 0o644); err != nil {
					return err
				}
			}
			res := struct {
				Alg     string `json:"alg"`
				KID     string `json:"kid"`
				Private string `json:"private"`
				Public  string `json:"public,omitempty"`
			}{alg, fmt.Sprintf("%x", k.KID), out, pubOut}
			return printResult(cmd.OutOrStdout(), output, res, func() {
				fmt.Fprintf(cmd.OutOrStdout(), "generated %s key %s\n  private: %s (0600)\n", alg, res.KID, out)
				if pubOut != "" {
					fmt.Fprintf(cmd.OutOrStdout(), "  public:  %s\n", pubOut)
				}
			})
		},
	}
	addOutputFlag(cmd, &output)
	cmd.Flags().StringVar(&out, "out", "", "private key file to write (required)")
	cmd.Flags().StringVar(&pubOut, "public-out", "", "public key file to write")
	cmd.Flags().StringVar(&alg, "alg", "ES256", "algorithm: "+keys.StatementAlgorithmNames)
	cmd.Flags().StringVar(&format, "format", "jwk", "key file format: jwk or cose")
	_ = cmd.MarkFlagRequired("out")
	return cmd
}
