package main

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/trustfabric/trustfabric/pkg/attest"
	"github.com/trustfabric/trustfabric/pkg/workload"
)

func init() { register(NewCmdAttest) }

// NewCmdAttest returns `trustfabric attest`: identity → provenance → sign →
// register → attach in one process.
func NewCmdAttest() *cobra.Command {
	var (
		o         attest.Options
		oo        attest.OutputOptions
		output    string
		recursive bool
	)
	cmd := &cobra.Command{
		Use:   "attest (IMAGE[@DIGEST] | --file PATH) --ts URL --identity-server URL",
		Short: "Sign, register and attach the provenance of an image, or of a file (stored next to it)",
		Example: `  # in a GitHub Actions or GitLab CI job (TRUSTFABRIC_TS_URL and TRUSTFABRIC_IDENTITY_SERVER set once):
  trustfabric attest ghcr.io/acme/app@sha256:…
  trustfabric attest --file dist/app_linux_amd64.tar.gz    # writes dist/app_linux_amd64.tar.gz.scitt.cose
  trustfabric attest ghcr.io/acme/app:1.2 --ts https://ts.example --identity-server https://id.example --output json
  trustfabric attest registry.local:5000/app:dev --insecure-registry registry.local:5000 --predicate sbom.json --content-type application/vnd.cyclonedx+json`,
		Long: `attest runs the build side of Trustfabric in one process, so the workload's private
key never touches disk:

  identity    exchange the CI job's OIDC token for a WIMSE Workload Identity Token
  provenance  resolve the image tag to a digest once and build SLSA provenance from the
              CI context (or take --predicate FILE: an in-toto statement used as given,
              a DSSE envelope whose signature verifies with --predicate-key, a bare
              predicate wrapped in a statement about the image with --predicate-type,
              or with --content-type any payload signed as it is, e.g. a CycloneDX SBOM)
  sign        sign a SCITT Signed Statement (hash envelope, iss = the workload identifier,
              sub = oci://REGISTRY/REPOSITORY@sha256:HEX, the WIT in the protected header)
  register    register it with the Transparency Service (WIMSE-authenticated) and check
              the receipt against the service's keys
  attach      attach statement + receipt and the preimage as an OCI referrer

With --file PATH instead of an image, the subject is the file's SHA-256 (sub =
sha256:HEX) and the attach step stores the transparent statement next to the file as
PATH.scitt.cose (or at --statement-out), its preimage next to that;
'trustfabric verify --file PATH' checks them.

Each step is printed with its duration, then the entry id, log index, tree size and
referrer digest. In GitHub Actions the step outputs entry-id, log-index, tree-size,
referrer-digest and statement-path are set and a job summary is written; in GitLab CI a
dotenv report (TRUSTFABRIC_ENTRY_ID, …) goes to --dotenv (default trustfabric.env); for
Tekton the ENTRY_ID, LOG_INDEX, REFERRER_DIGEST and REFERRER_URI results are written to
--tekton-results-dir (or $TRUSTFABRIC_TEKTON_RESULTS_DIR).

Exit status: 0 attested; 1 an identity or transparency service refused the request or
returned a receipt that does not verify; 2 bad input, an unreachable service, or a
statement registered but not attached (the error says how to retry).`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if (len(args) == 1) == (o.File != "") {
				return errors.New("give an image or --file PATH (one of them)")
			}
			stdout, stderr := cmd.OutOrStdout(), cmd.ErrOrStderr()
			progress := stdout
			if output == "json" {
				progress = stderr
			}
			if len(args) == 1 {
				o.Image = args[0]
			}
			o.Out = stderr
			o.Progress = func(s attest.Step) { attest.WriteStep(progress, s) }
			var (
				res       *attest.Result
				platforms []*attest.Result
				runErr    error
			)
			if recursive {
				res, platforms, runErr = attest.RunRecursive(cmd.Context(), o)
			} else {
				res, runErr = attest.Run(cmd.Context(), o)
			}
			if res == nil {
				return runErr
			}
			if output == "json" {
				enc := json.NewEncoder(stdout)
				enc.SetIndent("", "  ")
				var v any = res
				if recursive {
					v = append([]*attest.Result{res}, platforms...)
				}
				if err := enc.Encode(v); err != nil {
					return err
				}
			} else if runErr == nil {
				fmt.Fprintln(stdout)
				attest.WriteText(stdout, res)
				for _, p := range platforms {
					fmt.Fprintf(stdout, "\nplatform manifest %s@%s\n", p.Repository, p.Digest)
					attest.WriteText(stdout, p)
				}
			}
			written, outErr := attest.WriteOutputs(res, runErr, oo)
			for _, f := range written {
				fmt.Fprintf(stderr, "wrote %s\n", f)
			}
			switch {
			case runErr != nil && (errors.Is(runErr, attest.ErrRefused) || errors.Is(runErr, attest.ErrBadReceipt)):
				return &invalidError{runErr}
			case runErr != nil:
				return runErr
			}
			return outErr
		},
	}
	f := cmd.Flags()
	f.BoolVar(&recursive, "recursive", false, "for an image index, also attest each platform manifest it lists, each with its own statement (--output json then prints a list: the index first)")
	f.StringVar(&o.File, "file", "", "attest this file instead of an image: its statement is stored next to it as PATH"+attest.FileStatementSuffix)
	f.StringVar(&o.TS, "ts", "", "Transparency Service URL")
	f.StringVar(&o.IdentityServer, "identity-server", "", "Identity Server URL")
	f.StringVar(&o.Audience, "audience", "", "audience of the CI OIDC token (default: the identity server URL)")
	f.StringVar(&o.Provider, "provider", workload.ProviderAuto, "identity provider: auto, github, gitlab, kubernetes or spiffe")
	f.StringVar(&o.PredicateFile, "predicate", "", "in-toto statement, DSSE envelope, bare predicate (JSON), or with --content-type any payload (an SBOM) to sign instead of generated SLSA provenance")
	f.StringVar(&o.PredicateType, "predicate-type", "", "predicate type of a bare --predicate, wrapped in an in-toto statement (e.g. https://cyclonedx.org/bom; default: SLSA provenance v1 when it has that shape)")
	f.StringVar(&o.ContentType, "content-type", "", "sign --predicate as it is with this content type (application/vnd.cyclonedx+json, application/spdx+json, text/plain, …; JSON types must be JSON); default: in-toto")
	f.StringArrayVar(&o.PredicateKeys, "predicate-key", nil, "public key (PEM, JWK, COSE_Key) a DSSE envelope given as --predicate must verify with (repeatable); envelopes are refused without one")
	f.StringVar(&o.Location, "location", "", "payload location URI to record in the statement (label 260)")
	f.StringVar(&o.StatementOut, "statement-out", "", "also write the transparent statement to FILE (and its preimage to FILE"+attest.PreimageSuffix+")")
	f.StringArrayVar(&o.InsecureRegistries, "insecure-registry", nil, "registry host:port to reach over plain HTTP (repeatable; loopback registries need not be listed)")
	addOutputFlag(cmd, &output)
	f.StringVar(&oo.DotenvFile, "dotenv", "", "GitLab dotenv report to write (default "+attest.DefaultDotenvFile+" when GITLAB_CI is set)")
	f.StringVar(&oo.TektonResultsDir, "tekton-results-dir", "", "directory of Tekton result files (default $"+attest.EnvTektonResultsDir+")")
	return cmd
}
