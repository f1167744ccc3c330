package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/trustfabric/trustfabric/pkg/attest"
	"github.com/trustfabric/trustfabric/pkg/oci"
)

func init() { register(NewCmdAttach) }

// NewCmdAttach returns `trustfabric attach`.
func NewCmdAttach() *cobra.Command {
	var statementFile, preimageFile, output string
	var insecure []string
	var recursive bool
	cmd := &cobra.Command{
		Use:   "attach IMAGE@DIGEST --statement TRANSPARENT_STATEMENT --preimage FILE [--recursive]",
		Short: "Attach a transparent statement and its preimage to an image as an OCI 1.1 referrer",
		Example: `  trustfabric attach ghcr.io/acme/app@sha256:… --statement app.transparent.cose --preimage provenance.json
  trustfabric attach localhost:5000/app@sha256:… --statement s.cose --preimage p.json --recursive`,
		Long: `attach pushes one OCI image manifest (artifactType application/scitt-statement+cose) whose layers
are the transparent statement and its preimage, with the image as its subject. The preimage is checked
against the content type the statement declares (label 259, or 3 for an embedded payload): an in-toto
statement strictly, JSON types (application/json, application/vnd.cyclonedx+json, …) as JSON, others
by digest only; its layer gets that media type, and both layers a file name (org.opencontainers.image.title)
for oras pull. Registries with the referrers API index it; on others the sha256-<hex> tag index is
updated safely under concurrency. With --recursive, an index subject and each of its platform manifests
get the referrer.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			stmt, err := readInput(statementFile)
			if err != nil {
				return err
			}
			pre, err := readInput(preimageFile)
			if err != nil {
				return err
			}
			a, err := attest.NewAttachment(stmt, pre)
			if err != nil {
				return err
			}
			c, err := newOCIClient(insecure)
			if err != nil {
				return err
			}
			var opts []oci.AttachOption
			if recursive {
				opts = append(opts, oci.Recursive())
			}
			done, err := c.Attach(cmd.Context(), args[0], a, opts...)
			if output == "json" {
				type attached struct {
					Subject  string `json:"subject"`
					Referrer string `json:"referrer"`
					Mode     string `json:"mode"`
				}
				res := []attached{}
				for _, d := range done {
					res = append(res, attached{fmt.Sprint(d.Subject), fmt.Sprint(d.Referrer), fmt.Sprint(d.Mode)})
				}
				if werr := writeJSON(cmd.OutOrStdout(), res); err == nil {
					err = werr
				}
				return err
			}
			for _, d := range done {
				fmt.Fprintf(cmd.OutOrStdout(), "%s\t%s\t(%s)\n", d.Subject, d.Referrer, d.Mode)
			}
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&statementFile, "statement", "", "transparent statement (COSE_Sign1 with receipts)")
	f.StringVar(&preimageFile, "preimage", "", "the payload the statement signs (in-toto statement, DSSE envelope, SBOM, any content)")
	addOutputFlag(cmd, &output)
	f.BoolVar(&recursive, "recursive", false, "also attach to every platform manifest of an index")
	f.StringArrayVar(&insecure, "insecure-registry", nil, "registry host allowed over plain HTTP (repeatable)")
	_ = cmd.MarkFlagRequired("statement")
	_ = cmd.MarkFlagRequired("preimage")
	return cmd
}
