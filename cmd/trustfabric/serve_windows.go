package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"
)

// errNeedsPOSIX: the Transparency Service stores its log with Tessera's POSIX
// driver (flock, O_DIRECTORY), which does not build on Windows.
var errNeedsPOSIX = errors.New("needs a POSIX filesystem (Tessera's POSIX log driver): run it on Linux or macOS, or in the container image")

func init() {
	for _, name := range []string{"serve", "quickstart"} {
		register(func() *cobra.Command {
			return &cobra.Command{
				Use:     name,
				Short:   "Not available on Windows: " + errNeedsPOSIX.Error(),
				Example: "  trustfabric " + name + "    # on Linux or macOS",
				RunE: func(*cobra.Command, []string) error {
					return fmt.Errorf("%s %w", name, errNeedsPOSIX)
				},
			}
		})
	}
}
