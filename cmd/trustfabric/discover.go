package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/trustfabric/trustfabric/pkg/oci"
)

func init() { register(NewCmdDiscover) }

// discoverEntry is one line of `trustfabric discover --output json`.
type discoverEntry struct {
	Digest        string   `json:"digest"`
	ArtifactType  string   `json:"artifactType"`
	Issuer        string   `json:"issuer,omitempty"`
	Subject       string   `json:"subject,omitempty"`
	TS            []string `json:"transparencyServices,omitempty"`
	EntryID       string   `json:"entryId,omitempty"`
	PredicateType string   `json:"predicateType,omitempty"`
	ContentType   string   `json:"contentType,omitempty"`
	Created       string   `json:"created,omitempty"`
	Error         string   `json:"error,omitempty"`
}

// NewCmdDiscover returns `trustfabric discover`.
func NewCmdDiscover() *cobra.Command {
	var output, artifactType string
	var insecure []string
	var all bool
	cmd := &cobra.Command{
		Use:   "discover IMAGE[@DIGEST] [--output json]",
		Short: "List the transparent statements attached to an image",
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
			entries := make([]discoverEntry, 0, len(d.Entries))
			for _, e := range d.Entries {
				de := discoverEntry{Digest: e.Descriptor.Digest, ArtifactType: e.Descriptor.ArtifactType,
					Issuer: e.Annotations.Issuer, Subject: e.Annotations.Subject, TS: e.Annotations.TS,
					EntryID: e.Annotations.EntryID, PredicateType: e.Annotations.PredicateType,
					ContentType: e.Annotations.ContentType}
				if !e.Annotations.Created.IsZero() {
					de.Created = e.Annotations.Created.Format(time.RFC3339)
				}
				if e.Err != nil {
					de.Error = e.Err.Error()
				}
				entries = append(entries, de)
			}
			out := cmd.OutOrStdout()
			if output == "json" {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				return enc.Encode(map[string]any{"image": d.Repository + "@" + d.Digest, "mode": d.Mode, "referrers": entries})
			}
			fmt.Fprintf(out, "%s@%s (%s, %d referrers)\n", d.Repository, d.Digest, d.Mode, len(entries))
			tw := tabwriter.NewWriter(out, 2, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "DIGEST\tARTIFACT TYPE\tPAYLOAD\tISSUER\tSUBJECT\tTRANSPARENCY SERVICES\tCREATED")
			for _, e := range entries {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", e.Digest, e.ArtifactType, payloadLabel(e), e.Issuer, e.Subject,
					strings.Join(e.TS, ","), e.Created)
				if e.Error != "" {
					fmt.Fprintf(tw, "  error: %s\t\t\t\t\t\t\n", e.Error)
				}
			}
			return tw.Flush()
		},
	}
	f := cmd.Flags()
	f.StringVarP(&output, "output", "o", "text", "text or json")
	f.StringVar(&artifactType, "artifact-type", oci.ArtifactType, "artifact type to list")
	f.BoolVar(&all, "all", false, "list referrers of every artifact type")
	f.StringArrayVar(&insecure, "insecure-registry", nil, "registry host allowed over plain HTTP (repeatable)")
	return cmd
}

// payloadLabel names what a statement carries: the in-toto predicate type, or
// the content type of another payload.
func payloadLabel(e discoverEntry) string {
	switch {
	case e.PredicateType != "":
		return e.PredicateType
	case e.ContentType != "":
		return e.ContentType
	}
	return "-"
}
