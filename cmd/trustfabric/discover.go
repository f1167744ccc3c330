package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/trustfabric/trustfabric/pkg/oci"
)

func init() { register(NewCmdDiscover) }

// NewCmdDiscover returns `trustfabric discover`.
func NewCmdDiscover() *cobra.Command {
	var output, artifactType string
	var insecure []string
	var all bool
	cmd := &cobra.Command{
		Use:   "discover IMAGE[@DIGEST] [--output json]",
		Short: "List the transparent statements attached to an image",
		Example: `  trustfabric discover ghcr.io/acme/app@sha256:…
  trustfabric discover localhost:5000/app:dev --all --output json`,
		Long: `discover lists the OCI 1.1 referrers of an image (a tag is resolved to its digest once) through the
referrers API, following pagination, or the sha256-<hex> tag index on registries without the API. Each
referrer is shown with its artifact type, payload (predicate type of an in-toto statement, else the
payload's content type), issuer, subject, transparency services and creation time.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if output != "text" && output != "json" {
				return fmt.Errorf("--output must be text or json, not %q", output)
			}
			c, err := newOCIClient(insecure)
			if err != nil {
				return err
			}
			if all {
				artifactType = ""
			}
			d, err := c.Discover(cmd.Context(), args[0], oci.WithArtifactType(artifactType))
			if err != nil {
				return err
			}
			l := d.Listing()
			out := cmd.OutOrStdout()
			if output == "json" {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				return enc.Encode(l)
			}
			fmt.Fprintf(out, "%s (%s, %d referrers)\n", l.Image, l.Mode, len(l.Referrers))
			tw := tabwriter.NewWriter(out, 2, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "DIGEST\tARTIFACT TYPE\tPAYLOAD\tISSUER\tSUBJECT\tTRANSPARENCY SERVICES\tCREATED")
			for _, e := range l.Referrers {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", e.Digest, e.ArtifactType, e.Payload(), e.Issuer, e.Subject,
					strings.Join(e.TS, ","), e.Created)
				if e.Error != "" {
					fmt.Fprintf(tw, "  error: %s\t\t\t\t\t\t\n", e.Error)
				}
			}
			return tw.Flush()
		},
	}
	f := cmd.Flags()
	addOutputFlag(cmd, &output)
	f.StringVar(&artifactType, "artifact-type", oci.ArtifactType, "artifact type to list")
	f.BoolVar(&all, "all", false, "list referrers of every artifact type")
	f.StringArrayVar(&insecure, "insecure-registry", nil, "registry host allowed over plain HTTP (repeatable)")
	return cmd
}
