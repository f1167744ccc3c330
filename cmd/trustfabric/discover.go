package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/trustfabric/trustfabric/pkg/oci"
)

func init() { register(NewCmdDiscover) }

// NewCmdDiscover returns `trustfabric discover`.
func NewCmdDiscover() *cobra.Command {
	var output, artifactType, saveLayout string
	var insecure []string
	var all bool
	cmd := &cobra.Command{
		Use:   "discover IMAGE[@DIGEST] [--output json] [--save-layout DIR]",
		Short: "List the transparent statements attached to an image",
		Example: `  trustfabric discover ghcr.io/acme/app@sha256:…
  trustfabric discover localhost:5000/app:dev --all --output json
  trustfabric discover ghcr.io/acme/app@sha256:… --save-layout app-layout   # then: verify --offline --oci-layout app-layout`,
		Long: `discover lists the OCI 1.1 referrers of an image (a tag is resolved to its digest once) through the
referrers API, following pagination, or the sha256-<hex> tag index on registries without the API. Each
referrer is shown with its artifact type, payload (predicate type of an in-toto statement, else the
payload's content type), issuer, subject, transparency services and creation time.

--save-layout DIR also writes the image's manifest and its transparent statements (manifests, config and
layers, digests checked) to a new OCI image layout in DIR, which verify --oci-layout reads with no network.`,
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
			var d *oci.Discovery
			if saveLayout != "" {
				if artifactType != oci.ArtifactType {
					return errors.New("--save-layout saves the transparent statements: it does not go with --all or --artifact-type")
				}
				if d, err = c.SaveLayout(cmd.Context(), args[0], saveLayout); err != nil {
					return err
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "saved the image manifest and %d statements to %s (verify --oci-layout %s)\n", len(d.Entries), saveLayout, saveLayout)
			} else if d, err = c.Discover(cmd.Context(), args[0], oci.WithArtifactType(artifactType)); err != nil {
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
	f.StringVar(&saveLayout, "save-layout", "", "also save the image manifest and its transparent statements as an OCI image layout in this new directory (for verify --oci-layout)")
	return cmd
}
