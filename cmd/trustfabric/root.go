package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
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
		Version:       buildInfo().Version,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetVersionTemplate("trustfabric {{.Version}}\n")
	for _, newCmd := range subcommands {
		root.AddCommand(newCmd())
	}
	root.SetHelpCommand(newHelpCmd())
	root.InitDefaultCompletionCmd()
	rejectUnknownSubcommands(root)
	documentEnvDefaults(root)
	root.PersistentPreRunE = func(cmd *cobra.Command, _ []string) error {
		return applyEnvDefaults(cmd, os.Getenv)
	}
	return root
}

// envDefaults maps a flag that CI jobs repeat to the environment variable
// that gives its default, with the same meaning on every command that has the
// flag: a flag given on the command line wins, then the variable, then the
// flag's own default. Each flag's help names its variable.
var envDefaults = map[string]string{
	"ts":              "TRUSTFABRIC_TS_URL",          // attest, register, bench register
	"identity-server": "TRUSTFABRIC_IDENTITY_SERVER", // attest
	"server":          "TRUSTFABRIC_IDENTITY_SERVER", // identity
	"policy":          "TRUSTFABRIC_POLICY",          // verify
}

func documentEnvDefaults(c *cobra.Command) {
	for _, sub := range c.Commands() {
		documentEnvDefaults(sub)
	}
	c.Flags().VisitAll(func(f *pflag.Flag) {
		if env, ok := envDefaults[f.Name]; ok {
			f.Usage += " (default $" + env + ")"
		}
	})
}

// applyEnvDefaults sets the flags of cmd that were not given from their
// environment variables. It runs before cobra checks required flags, so a
// variable satisfies a required flag.
func applyEnvDefaults(cmd *cobra.Command, getenv func(string) string) error {
	var err error
	cmd.Flags().VisitAll(func(f *pflag.Flag) {
		env, ok := envDefaults[f.Name]
		if !ok || f.Changed || err != nil {
			return
		}
		if v := getenv(env); v != "" {
			if serr := cmd.Flags().Set(f.Name, v); serr != nil {
				err = fmt.Errorf("$%s: %w", env, serr)
			}
		}
	})
	return err
}

// rejectUnknownSubcommands makes every command group (key, statement, …)
// fail with a usage error (exit 2) on an unknown subcommand; cobra checks
// subcommand names only at the root and would print the group's help and
// exit 0. A group given no subcommand still prints its help.
func rejectUnknownSubcommands(c *cobra.Command) {
	for _, sub := range c.Commands() {
		rejectUnknownSubcommands(sub)
	}
	if c == c.Root() || !c.HasSubCommands() || c.Runnable() {
		return
	}
	c.RunE = func(cmd *cobra.Command, args []string) error {
		if len(args) > 0 {
			return fmt.Errorf("unknown command %q for %q (see %s --help)", args[0], cmd.CommandPath(), cmd.CommandPath())
		}
		return cmd.Help()
	}
}

// newHelpCmd is cobra's help command, except that an unknown topic is a
// usage error (exit 2) instead of the root's usage with exit 0.
func newHelpCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "help [command]",
		Short: "Help about any command",
		RunE: func(c *cobra.Command, args []string) error {
			cmd, rest, err := c.Root().Find(args)
			if err != nil || len(rest) > 0 {
				return fmt.Errorf("unknown help topic %q (see trustfabric --help)", args)
			}
			return cmd.Help()
		},
	}
}
