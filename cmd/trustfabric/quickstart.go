//go:build !windows

package main

import (
	"github.com/spf13/cobra"

	"github.com/trustfabric/trustfabric/pkg/quickstart"
)

func init() { register(NewCmdQuickstart) }

// NewCmdQuickstart returns `trustfabric quickstart`.
func NewCmdQuickstart() *cobra.Command {
	var keep string
	cmd := &cobra.Command{
		Use:   "quickstart [--keep DIR]",
		Short: "Run the whole flow in process on loopback: identity, provenance, sign, register, attach, verify, deny",
		Example: `  trustfabric quickstart
  trustfabric quickstart --keep ./tf-demo    # keep the keys, statement, policy and log`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := quickstart.Run(cmd.Context(), quickstart.Options{Dir: keep, Out: cmd.OutOrStdout()})
			if err != nil {
				return &invalidError{err}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&keep, "keep", "", "keep the workspace (keys, statement, policy, log) in DIR")
	return cmd
}
