package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/trustfabric/trustfabric/pkg/keys"
	"github.com/trustfabric/trustfabric/pkg/oci"
	"github.com/trustfabric/trustfabric/pkg/provenance"
)

func init() { register(NewCmdProvenance) }

// NewCmdProvenance returns `trustfabric provenance`.
func NewCmdProvenance() *cobra.Command {
	var images, files, insecure []string
	var predicate, out string
	var predicateKeys []string
	cmd := &cobra.Command{
		Use:   "provenance --subject IMAGE[@DIGEST] | --subject-file FILE … [--predicate FILE] --out FILE",
		Short: "Write an in-toto statement with SLSA v1 provenance built from the CI context",
		Example: `  trustfabric provenance --subject ghcr.io/acme/app:1.2 --out provenance.json
  trustfabric provenance --subject-file dist/app.tar.gz --out -`,
		Long: `provenance writes an in-toto Statement v1 with a SLSA Provenance v1 predicate describing the
subjects, built from the documented environment variables of GitHub Actions, GitLab CI or Tekton.
An image tag is resolved to its digest once. With --predicate, the given in-toto statement (JSON or
a DSSE envelope) is written unchanged, after checking that it covers every subject; an envelope must
verify with a --predicate-key (it is refused without one).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			req := provenance.Request{Images: images, Files: files}
			if len(images) > 0 {
				c, err := newOCIClient(insecure)
				if err != nil {
					return err
				}
				req.Resolver = c
			}
			if predicate != "" {
				b, err := readInput(predicate)
				if err != nil {
					return err
				}
				req.Supplied = b
				for _, f := range predicateKeys {
					ks, err := keys.LoadPublic(f)
					if err != nil {
						return fmt.Errorf("--predicate-key %s: %w", f, err)
					}
					for _, k := range ks {
						req.SuppliedKeys = append(req.SuppliedKeys, k.Key)
					}
				}
			}
			st, err := provenance.Generate(cmd.Context(), req)
			if err != nil {
				return err
			}
			return writeOutput(out, st.Raw, 0o644)
		},
	}
	f := cmd.Flags()
	f.StringArrayVar(&images, "subject", nil, "image reference (repeatable); a tag is resolved to its digest")
	f.StringArrayVar(&files, "subject-file", nil, "file to describe by its SHA-256 (repeatable)")
	f.StringVar(&predicate, "predicate", "", "user-supplied in-toto statement or DSSE envelope, used unchanged")
	f.StringArrayVar(&predicateKeys, "predicate-key", nil, "public key (PEM, JWK, COSE_Key) a DSSE envelope --predicate must verify with (repeatable)")
	f.StringVar(&out, "out", "", "output file (- for stdout)")
	f.StringArrayVar(&insecure, "insecure-registry", nil, "registry host allowed over plain HTTP (repeatable)")
	_ = cmd.MarkFlagRequired("out")
	cmd.MarkFlagsOneRequired("subject", "subject-file")
	return cmd
}

// newOCIClient returns a registry client with the default keychain.
func newOCIClient(insecure []string) (*oci.Client, error) {
	var opts []oci.Option
	for _, h := range insecure {
		opts = append(opts, oci.WithInsecureRegistry(h))
	}
	return oci.New(opts...)
}
