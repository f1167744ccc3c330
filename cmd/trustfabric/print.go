package main

import (
	"fmt"
	"sort"
	"time"

	"github.com/spf13/cobra"

	"github.com/trustfabric/trustfabric/pkg/scitt"
)

// printValue prints decoded JSON as indented "key: value" lines, keys sorted
// with "type" first.
func printValue(cmd *cobra.Command, v any, indent string) {
	w := cmd.OutOrStdout()
	switch t := v.(type) {
	case map[string]any:
		keys := make([]string, 0, len(t))
		for k := range t {
			keys = append(keys, k)
		}
		sort.Slice(keys, func(i, j int) bool {
			if keys[i] == "type" || keys[j] == "type" {
				return keys[i] == "type"
			}
			return keys[i] < keys[j]
		})
		for _, k := range keys {
			switch c := t[k].(type) {
			case map[string]any, []any:
				fmt.Fprintf(w, "%s%s:\n", indent, k)
				printValue(cmd, c, indent+"  ")
			default:
				fmt.Fprintf(w, "%s%s: %v\n", indent, k, c)
			}
		}
	case []any:
		for _, e := range t {
			switch c := e.(type) {
			case map[string]any, []any:
				fmt.Fprintf(w, "%s-\n", indent)
				printValue(cmd, c, indent+"  ")
			default:
				fmt.Fprintf(w, "%s- %v\n", indent, c)
			}
		}
	default:
		fmt.Fprintf(w, "%s%v\n", indent, t)
	}
}

// verifyReport is the --output json of `statement verify` and `receipt
// verify` (docs/cli-json.md): the outcome, what the statement says, and each
// check that ran.
type verifyReport struct {
	Valid   bool   `json:"valid"`
	Issuer  string `json:"issuer,omitempty"`
	Subject string `json:"subject,omitempty"`
	// WorkloadID, WITValidAt and WITTimeSource are set for a statement
	// verified under a WIT (statement verify --identity-bundle).
	WorkloadID    string      `json:"workloadId,omitempty"`
	WITValidAt    *time.Time  `json:"witValidAt,omitempty"`
	WITTimeSource string      `json:"witTimeSource,omitempty"`
	Checks        []checkJSON `json:"checks"`
	Error         string      `json:"error,omitempty"`
}

// checkJSON is one scitt.Check.
type checkJSON struct {
	Name  string `json:"name"`
	OK    bool   `json:"ok"`
	Error string `json:"error,omitempty"`
}

func newVerifyReport(res *scitt.Result, err error) *verifyReport {
	r := &verifyReport{Valid: err == nil, Checks: []checkJSON{}}
	if res != nil {
		for _, c := range res.Checks {
			j := checkJSON{Name: c.Name, OK: c.OK}
			if c.Err != nil {
				j.Error = c.Err.Error()
			}
			r.Checks = append(r.Checks, j)
		}
	}
	if err != nil {
		r.Error = err.Error()
	}
	return r
}

// reportChecks prints a verification: the report as JSON, or the checks one
// a line then the line valid when it passed. A failed verification is an
// invalid error (exit 1), in either format.
func reportChecks(cmd *cobra.Command, output string, rep *verifyReport, res *scitt.Result, err error, valid string) error {
	w := cmd.OutOrStdout()
	if output == "json" {
		if e := writeJSON(w, rep); e != nil {
			return e
		}
	} else {
		if res != nil {
			fmt.Fprint(w, res)
		}
		if err == nil {
			fmt.Fprintln(w, valid)
		}
	}
	if err != nil {
		return &invalidError{err}
	}
	return nil
}
