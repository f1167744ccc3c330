package main

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/trustfabric/trustfabric/pkg/attest"
	"github.com/trustfabric/trustfabric/pkg/credential"
	"github.com/trustfabric/trustfabric/pkg/oci"
	"github.com/trustfabric/trustfabric/pkg/policy"
)

func init() { register(NewCmdVerify) }

// NewCmdVerify returns `trustfabric verify`, the deployment gate.
func NewCmdVerify() *cobra.Command {
	var policyFile, output, file, statementFile, preimageFile, credentialFile, nonce, layoutDir string
	var offline bool
	var insecure []string
	var timeout time.Duration
	var maxBytes int64
	cmd := &cobra.Command{
		Use:   "verify (IMAGE[@DIGEST] | --file PATH) --policy FILE [--output json] [--offline] [--oci-layout DIR] [--credential PRESENTATION [--nonce NONCE]]",
		Short: "Allow or deny an image or a file on its SCITT statements, receipts and identities, or an image on a credential (exit 0 allow, 1 deny)",
		Example: `  trustfabric verify ghcr.io/acme/app@sha256:… --policy policy.yaml
  trustfabric verify ghcr.io/acme/app@sha256:… --policy policy.yaml --offline --oci-layout ./app-layout   # no network
  trustfabric verify --file dist/app_linux_amd64.tar.gz --policy policy.yaml   # reads PATH.scitt.cose and its preimage
  TRUSTFABRIC_POLICY=policy.yaml trustfabric verify ghcr.io/acme/app:1.2 --output json
  trustfabric verify ghcr.io/acme/app@sha256:… --policy credential-policy.yaml --credential presentation.sd-jwt --nonce n-0S6_WzA2Mj`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if (len(args) == 1) == (file != "") {
				return errors.New("give an image or --file PATH (one of them)")
			}
			p, err := policy.Load(policyFile)
			if err != nil {
				return err
			}
			if nonce != "" && credentialFile == "" {
				return errors.New("--nonce goes with --credential")
			}
			if credentialFile != "" {
				if file != "" {
					return errors.New("--credential decides on an image, not on --file")
				}
				pres, err := readInput(credentialFile)
				if err != nil {
					return err
				}
				d, err := credential.Gate(p, credential.GateRequest{Image: args[0], Presentation: pres, Nonce: nonce})
				if err != nil {
					return err
				}
				return reportDecision(cmd, d, output)
			}
			if layoutDir != "" && file != "" {
				return errors.New("--oci-layout holds images: give an image, not --file")
			}
			var ociOpts []oci.Option
			for _, h := range insecure {
				ociOpts = append(ociOpts, oci.WithInsecureRegistry(h))
			}
			if layoutDir != "" {
				ociOpts = append(ociOpts, oci.WithLayout(layoutDir))
			}
			client, err := oci.New(ociOpts...)
			if err != nil {
				return err
			}
			opts := []policy.Option{policy.WithOCIClient(client), policy.WithBudget(timeout, maxBytes)}
			if offline {
				opts = append(opts, policy.WithOffline())
			}
			v, err := policy.NewVerifier(cmd.Context(), p, opts...)
			if err != nil {
				return err
			}
			var d *policy.Decision
			if file != "" {
				d, err = verifyFile(cmd, v, file, statementFile, preimageFile)
			} else {
				d, err = v.Verify(cmd.Context(), args[0])
			}
			if err != nil {
				return err
			}
			return reportDecision(cmd, d, output)
		},
	}
	f := cmd.Flags()
	f.StringVar(&policyFile, "policy", "", "verification policy file (required)")
	addOutputFlag(cmd, &output)
	f.BoolVar(&offline, "offline", false, "use only pinned keys and bundle files, and the registry (or --oci-layout)")
	f.StringArrayVar(&insecure, "insecure-registry", nil, "registry host:port to reach over plain HTTP (repeatable; loopback registries need not be listed)")
	f.DurationVar(&timeout, "timeout", policy.DefaultTimeout, "time budget of the verification (0: none); beyond it verify fails (exit 2), never allows")
	f.Int64Var(&maxBytes, "max-bytes", policy.DefaultMaxBytes, "bytes of referrer manifests and layers the verification may fetch, each blob once (0: no limit)")
	f.StringVar(&file, "file", "", "verify this file instead of an image, on the statement stored next to it (PATH"+attest.FileStatementSuffix+")")
	f.StringVar(&statementFile, "statement", "", "with --file: the transparent statement (default PATH"+attest.FileStatementSuffix+")")
	f.StringVar(&preimageFile, "preimage", "", "with --file: the statement's preimage (default the one file STATEMENT.* next to it)")
	f.StringVar(&credentialFile, "credential", "", "decide on this credential presentation (SD-JWT VC or SD-CWT) under the policy's credentials section, not on SCITT evidence; IMAGE must carry its digest")
	f.StringVar(&layoutDir, "oci-layout", "", "read the image and its referrers from this OCI image layout directory instead of the registry (the image keeps its registry name); with --offline nothing is fetched from the network")
	f.StringVar(&nonce, "nonce", "", "the nonce the credential presentation must carry (with --credential)")
	_ = cmd.MarkFlagRequired("policy")
	return cmd
}

// reportDecision prints a decision and returns the deny as an invalid
// error (exit 1).
func reportDecision(cmd *cobra.Command, d *policy.Decision, output string) error {
	if output == "json" {
		b, err := d.JSON()
		if err != nil {
			return err
		}
		fmt.Fprintln(cmd.OutOrStdout(), string(b))
	} else {
		printDecision(cmd, d)
	}
	if !d.Allowed {
		for _, r := range d.Reasons {
			fmt.Fprintln(cmd.ErrOrStderr(), "deny: "+r)
		}
		return &invalidError{errors.New("denied: " + d.Image)}
	}
	return nil
}

// verifyFile decides on a file from its transparent statement and preimage,
// as `trustfabric attest --file` stored them next to it.
func verifyFile(cmd *cobra.Command, v *policy.Verifier, file, statementFile, preimageFile string) (*policy.Decision, error) {
	if statementFile == "" {
		statementFile = file + attest.FileStatementSuffix
	}
	if preimageFile == "" {
		matches, err := filepath.Glob(globEscape(statementFile) + ".*")
		if err != nil {
			return nil, err
		}
		if len(matches) != 1 {
			return nil, fmt.Errorf("%d files %s.* next to the statement: give the preimage with --preimage", len(matches), statementFile)
		}
		preimageFile = matches[0]
	}
	sum, err := fileDigest(file)
	if err != nil {
		return nil, err
	}
	stmt, err := readInput(statementFile)
	if err != nil {
		return nil, err
	}
	pre, err := readInput(preimageFile)
	if err != nil {
		return nil, err
	}
	return v.VerifyEvidence(cmd.Context(), file, sum, []policy.Evidence{{Source: statementFile, Statement: stmt, Preimage: pre}})
}

// fileDigest is "sha256:<hex>" of a file, read as a stream.
func fileDigest(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("read %s: %w", path, err)
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), nil
}

// globEscape quotes the glob metacharacters of a literal path.
func globEscape(p string) string {
	return strings.NewReplacer(`\`, `\\`, "*", `\*`, "?", `\?`, "[", `\[`).Replace(p)
}

func printDecision(cmd *cobra.Command, d *policy.Decision) {
	w := cmd.OutOrStdout()
	verdict := "DENY"
	if d.Allowed {
		verdict = "ALLOW"
	}
	cached := ""
	if d.Cached {
		cached = " (cached)"
	}
	fmt.Fprintf(w, "%s %s%s\n", verdict, d.Image, cached)
	for _, c := range d.Candidates {
		mark := "rejected"
		if c.OK {
			mark = "accepted"
		}
		fmt.Fprintf(w, "  referrer %s %s\n", c.Referrer, mark)
		if c.Issuer != "" {
			fmt.Fprintf(w, "    issuer:  %s\n", c.Issuer)
		}
		if c.Payload != "" {
			fmt.Fprintf(w, "    payload: %s\n", c.Payload)
		}
		if len(c.Services) > 0 {
			fmt.Fprintf(w, "    registered with %s at %s\n", strings.Join(c.Services, ", "), c.RegisteredAt.Format("2006-01-02T15:04:05Z07:00"))
		}
		for _, ch := range c.Checks {
			if ch.OK {
				detail := ""
				if ch.Reason != "" {
					detail = ": " + ch.Reason
				}
				fmt.Fprintf(w, "    ok   %s%s\n", ch.Name, detail)
			} else {
				fmt.Fprintf(w, "    FAIL %s: %s\n", ch.Name, ch.Reason)
			}
		}
	}
	if len(d.Candidates) == 0 {
		fmt.Fprintln(w, "  no SCITT statement is attached to this image")
	}
	for _, r := range d.Requirements {
		if r.SatisfiedBy != "" {
			fmt.Fprintf(w, "  required %s: met by %s\n", r.Name, r.SatisfiedBy)
		} else {
			fmt.Fprintf(w, "  required %s: NOT MET\n", r.Name)
		}
	}
}
