package main

import (
	"github.com/spf13/cobra"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

// subcommands lists the constructors of the top-level subcommands. Each
// subcommand file appends its NewCmdX constructor from an init function, so
// that adding a command touches only its own file.
var subcommands []func() *cobra.Command

func register(newCmd func() *cobra.Command) { subcommands = append(subcommands, newCmd) }

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "trustfabric",
		Short: "Provenance, workload identity and transparency receipts for CI pipelines",
		Long: `trustfabric signs build provenance as SCITT Signed Statements, registers them with a
Transparency Service, attaches them to OCI images and gates deployments on them.`,
		Version:       version,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	for _, newCmd := range subcommands {
		root.AddCommand(newCmd())
	}
	return root
}
