package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/trustfabric/trustfabric/pkg/audit"
)

func init() { register(NewCmdAudit) }

// NewCmdAudit returns `trustfabric audit`, the CI secrets audit.
func NewCmdAudit() *cobra.Command {
	var format, failOn string
	var refPin []string
	cmd := &cobra.Command{
		Use:   "audit [PATH...] [--format text|json|sarif] [--fail-on SEVERITY]",
		Short: "Find long-lived secrets and risky settings in CI pipelines (exit 1 on findings at or above --fail-on)",
		Example: `  trustfabric audit                       # the repository's .github/workflows and .gitlab-ci.yml
  trustfabric audit .github/workflows --format sarif > audit.sarif
  trustfabric audit --fail-on error --format json`,
		Long: `audit reads GitHub Actions workflows and composite actions, GitLab CI files (with their
local includes) and Tekton resources, and reports the long-lived credentials they use, secrets
written in them, and settings that stand in the way of OIDC: each finding with its file, line,
rule, severity and the migration to a workload identity or a cloud's OIDC federation.
Secret values are never printed, only a fingerprint (the first 8 hex digits of their SHA-256).
Without PATH, audits the current directory.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if format != "text" && format != "json" && format != "sarif" {
				return fmt.Errorf("--format %q: want text, json or sarif", format)
			}
			threshold, err := audit.ParseSeverity(failOn)
			if err != nil {
				return fmt.Errorf("--fail-on: %w", err)
			}
			if len(args) == 0 {
				args = []string{"."}
			}
			r, err := audit.Scan(cmd.Context(), args, audit.WithRefPinAllowed(refPin...))
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			switch format {
			case "json":
				err = r.WriteJSON(w)
			case "sarif":
				err = r.WriteSARIF(w, version)
			default:
				err = r.WriteText(w)
			}
			if err != nil {
				return err
			}
			for _, e := range r.Errors {
				fmt.Fprintf(cmd.ErrOrStderr(), "audit: %v\n", e)
			}
			if threshold != audit.SeverityNone {
				if n := r.Count(threshold); n > 0 {
					return &invalidError{fmt.Errorf("%d findings at or above %s", n, threshold)}
				}
			}
			if len(r.Errors) > 0 {
				return fmt.Errorf("%d files could not be audited", len(r.Errors))
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&format, "format", "text", "output format: text, json or sarif")
	f.StringVar(&failOn, "fail-on", "warning", "exit 1 when a finding has this severity or higher: note, warning, error, or none")
	f.StringArrayVar(&refPin, "allow-ref-pin", nil, "OWNER or OWNER/REPO whose actions may be used by tag (repeatable; actions and github always may)")
	return cmd
}
