package main

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/trustfabric/trustfabric/pkg/scitt"
	"github.com/trustfabric/trustfabric/pkg/wimse"
)

func init() { register(NewCmdInspect) }

// NewCmdInspect returns `trustfabric inspect`.
func NewCmdInspect() *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "inspect FILE [--output json]",
		Short: "Show a statement, receipt, transparent statement, key file, WIT or WPT readably (nothing is verified)",
		Example: `  trustfabric inspect app.transparent.cose
  trustfabric inspect wit.jwt --output json | jq .claims`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			b, err := readInput(args[0])
			if err != nil {
				return err
			}
			if output != "text" && output != "json" {
				return fmt.Errorf("--output %q: want text or json", output)
			}
			var d any
			if tok := strings.TrimSpace(string(b)); strings.HasPrefix(tok, "eyJ") {
				// A JWS: a WIT, a WPT or a CI token. Shown, not verified.
				if d, err = wimse.Describe(tok); err != nil {
					return err
				}
			} else if d, err = scitt.Describe(b); err != nil {
				return err
			}
			if output == "json" {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(d)
			}
			return printDescription(cmd, d, "")
		},
	}
	addOutputFlag(cmd, &output)
	return cmd
}

// printDescription renders a description as indented YAML-like text.
func printDescription(cmd *cobra.Command, d any, indent string) error {
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
