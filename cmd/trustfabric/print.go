package main

import (
	"fmt"
	"sort"

	"github.com/spf13/cobra"
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
