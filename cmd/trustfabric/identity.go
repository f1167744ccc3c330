package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/trustfabric/trustfabric/pkg/workload"
)

func init() { register(NewCmdIdentity) }

// NewCmdIdentity returns `trustfabric identity`: exchange the CI platform's
// OIDC token for a WIMSE Workload Identity Token bound to a fresh key.
func NewCmdIdentity() *cobra.Command {
	var o workload.ObtainOptions
	var witOut, keyOut string
	cmd := &cobra.Command{
		Use:   "identity --server URL --wit-out FILE --key-out FILE",
		Short: "Obtain a Workload Identity Token (WIT) for this CI job",
		Example: `  trustfabric identity --server https://id.example --wit-out wit.jwt --key-out wit.jwk
  TRUSTFABRIC_IDENTITY_SERVER=https://id.example trustfabric identity --wit-out wit.jwt --key-out wit.jwk`,
		Long: `identity exchanges the CI platform's OIDC token (GitHub Actions, GitLab CI id_tokens,
a Kubernetes projected service-account token) at an identity server for a WIMSE Workload
Identity Token bound to a fresh ES256 key, or fetches a WIT-SVID from a SPIRE agent.
The WIT goes to --wit-out, the private key (JWK, mode 0600) to --key-out.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if witOut == "" || keyOut == "" {
				return errors.New("--wit-out and --key-out are required")
			}
			o.Out = cmd.OutOrStdout()
			creds, err := workload.Obtain(cmd.Context(), o)
			if err != nil {
				var xe *workload.ExchangeError
				if errors.As(err, &xe) {
					return &invalidError{err}
				}
				return err
			}
			if err := creds.WriteFiles(witOut, keyOut); err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "identity: %s (via %s)\n", creds.ID, creds.Provider)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Server, "server", "", "identity server URL")
	f.StringVar(&o.Audience, "audience", "", "audience of the CI token (default: the server URL)")
	f.StringVar(&o.Provider, "provider", workload.ProviderAuto, "auto, github, gitlab, kubernetes or spiffe")
	f.StringVar(&o.GitLabVariable, "gitlab-token-variable", "", "GitLab id_tokens variable (default TRUSTFABRIC_ID_TOKEN)")
	f.StringVar(&o.TokenFile, "token-file", "", "Kubernetes projected token file (default $TRUSTFABRIC_TOKEN_FILE or /var/run/secrets/trustfabric/token)")
	f.StringVar(&witOut, "wit-out", "", "file to write the WIT to")
	f.StringVar(&keyOut, "key-out", "", "file to write the private key (JWK, 0600) to")
	return cmd
}
