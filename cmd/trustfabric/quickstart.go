//go:build !windows

package main

import (
	"errors"

	"github.com/spf13/cobra"

	"github.com/trustfabric/trustfabric/pkg/quickstart"
)

func init() { register(NewCmdQuickstart) }

// NewCmdQuickstart returns `trustfabric quickstart`.
func NewCmdQuickstart() *cobra.Command {
	var keep string
	var serve bool
	cmd := &cobra.Command{
		Use:   "quickstart [--keep DIR [--serve]]",
		Short: "Run the whole flow in process on loopback: identity, provenance, sign, register, attach, verify, deny",
		Example: `  trustfabric quickstart
  trustfabric quickstart --keep ./tf-demo            # keep the keys, statement, policy and log
  trustfabric quickstart --keep ./tf-demo --serve    # then keep the services up; source ./tf-demo/env.sh elsewhere`,
		Args: cobra.NoArgs,
		Long: `quickstart runs the whole flow in process on loopback and checks the gate
allows what is proven and denies, at the right check, what is not.

With --serve --keep DIR it then keeps the registry, Transparency Service,
Identity Server and fake CI issuer running until interrupted (SIGINT or
SIGTERM, exit 0), with DIR/env.sh exporting TF_REGISTRY, TF_TS_URL,
TF_IDENTITY_SERVER, TF_IMAGE (attested, by digest), TF_IMAGE_TAG,
TF_UNATTESTED_IMAGE, TF_POLICY and TF_GITHUB_ISSUER for other tools, and
DIR/ci-env.sh the fake CI job's variables. Both files are removed when it stops.`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if serve && keep == "" {
				return errors.New("--serve needs --keep DIR (where env.sh is written)")
			}
			_, err := quickstart.Run(cmd.Context(), quickstart.Options{Dir: keep, Out: cmd.OutOrStdout(), Serve: serve})
			if err != nil {
				return &invalidError{err}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&keep, "keep", "", "keep the workspace (keys, statement, policy, log) in DIR")
	cmd.Flags().BoolVar(&serve, "serve", false, "keep the services running until interrupted and write DIR/env.sh (needs --keep)")
	return cmd
}
