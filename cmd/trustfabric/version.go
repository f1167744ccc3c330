package main

import (
	"encoding/json"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// Set at build time by the release build (devtools/release):
//
//	-ldflags "-X main.version=v1.2.3 -X main.commit=HEX -X main.date=2026-12-07T00:00:00Z"
//
// version is declared in root.go. Unset values come from the binary's build
// information (the module version of `go install …@vX`, and the VCS stamp of
// a build from a git checkout).
var (
	commit = ""
	date   = ""
)

// BuildInfo is what `trustfabric version` prints (its --output json schema).
type BuildInfo struct {
	Version   string `json:"version"`
	Commit    string `json:"commit,omitempty"`
	Modified  bool   `json:"modified,omitempty"`
	Date      string `json:"date,omitempty"`
	GoVersion string `json:"goVersion"`
	Platform  string `json:"platform"`
}

// buildInfo combines the ldflags-injected values with runtime/debug's.
func buildInfo() BuildInfo {
	bi := BuildInfo{Version: version, Commit: commit, Date: date, GoVersion: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return bi
	}
	if (bi.Version == "" || bi.Version == "dev") && info.Main.Version != "" && info.Main.Version != "(devel)" {
		bi.Version = info.Main.Version
	}
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			if bi.Commit == "" {
				bi.Commit = s.Value
			}
		case "vcs.time":
			if bi.Date == "" {
				bi.Date = s.Value
			}
		case "vcs.modified":
			bi.Modified = s.Value == "true"
		}
	}
	if info.GoVersion != "" {
		bi.GoVersion = info.GoVersion
	}
	return bi
}

func (b BuildInfo) writeText(w io.Writer) {
	fmt.Fprintf(w, "trustfabric %s\n", b.Version)
	commit := b.Commit
	if commit == "" {
		commit = "unknown"
	} else if b.Modified {
		commit += " (modified)"
	}
	d := b.Date
	if d == "" {
		d = "unknown"
	}
	fmt.Fprintf(w, "  commit:   %s\n  built:    %s\n  go:       %s\n  platform: %s\n", commit, d, b.GoVersion, b.Platform)
}

func init() { register(NewCmdVersion) }

// NewCmdVersion returns `trustfabric version`.
func NewCmdVersion() *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "version [--output json]",
		Short: "Print the version, commit, build date and Go version of this binary",
		Example: `  trustfabric version
  trustfabric version --output json | jq -r .commit
  trustfabric --version          # the version alone`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			b := buildInfo()
			return printResult(cmd.OutOrStdout(), output, b, func() { b.writeText(cmd.OutOrStdout()) })
		},
	}
	addOutputFlag(cmd, &output)
	return cmd
}

// writeJSON writes v as indented JSON: the --output json of every command.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// addOutputFlag adds the --output/-o flag every command that prints a result
// has; a value other than text or json is a usage error when flags are parsed,
// before the command does anything. docs/cli-json.md lists each command's
// JSON schema.
func addOutputFlag(cmd *cobra.Command, output *string) {
	*output = "text"
	cmd.Flags().VarP((*outputValue)(output), "output", "o", "output format: text or json")
	_ = cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions([]string{"text", "json"}, cobra.ShellCompDirectiveNoFileComp))
}

// outputValue is the --output flag's value: text or json.
type outputValue string

func (o *outputValue) String() string { return string(*o) }
func (o *outputValue) Type() string   { return "text|json" }
func (o *outputValue) Set(s string) error {
	if s != "text" && s != "json" {
		return fmt.Errorf("want text or json, not %q", s)
	}
	*o = outputValue(s)
	return nil
}

// printResult writes v as JSON when output is json, else runs text.
func printResult(w io.Writer, output string, v any, text func()) error {
	if output == "json" {
		return writeJSON(w, v)
	}
	text()
	return nil
}
