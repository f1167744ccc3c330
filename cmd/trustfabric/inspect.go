package main

import (
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/trustfabric/trustfabric/pkg/scitt"
)

func init() { register(NewCmdInspect) }

// NewCmdInspect returns `trustfabric inspect`.
func NewCmdInspect() *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "inspect FILE [--output json]",
		Short: "Show a statement, receipt, transparent statement or key file readably",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			b, err := readInput(args[0])
			if err != nil {
				return err
			}
			d, err := scitt.Describe(b)
			if err != nil {
				return err
			}
			switch output {
			case "json":
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(d)
			case "text", "":
				return printDescription(cmd, d, "")
			}
			return fmt.Errorf("--output %q: want text or json", output)
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "text", "output format: text or json")
	return cmd
}

// printDescription renders a description as indented YAML-like text.
func printDescription(cmd *cobra.Command, d *scitt.Description, indent string) error {
	b, err := json.Marshal(d)
	if err != nil {
		return err
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return err
	}
	printValue(cmd, m, indent)
	return nil
}
