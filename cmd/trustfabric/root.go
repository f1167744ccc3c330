package main

import (
	"github.com/spf13/cobra"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

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
	return root
}
