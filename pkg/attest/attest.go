package attest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/trustfabric/trustfabric/internal/atomicfile"
	"github.com/trustfabric/trustfabric/pkg/keys"
	"github.com/trustfabric/trustfabric/pkg/oci"
	"github.com/trustfabric/trustfabric/pkg/provenance"
	"github.com/trustfabric/trustfabric/pkg/scitt"
	"github.com/trustfabric/trustfabric/pkg/scitt/scrapi"
	"github.com/trustfabric/trustfabric/pkg/wimse"
	"github.com/trustfabric/trustfabric/pkg/workload"
)

// Step names, in the order Run performs them.
const (
	StepIdentity   = "identity"
	StepProvenance = "provenance"
	StepSign       = "sign"
	StepRegister   = "register"
	StepAttach     = "attach"
)

// CredentialsSource returns the workload identity to sign with: a WIT and the
// private key its cnf.jwk confirms. A source may return credentials without a
// WIT (a static key whose ID names the issuer); the statement then carries no
// "wit" header and the registration no WIMSE headers.
type CredentialsSource func(ctx context.Context) (*workload.Credentials, error)

// Options configure Run. Image and TS are required, and IdentityServer unless
// Credentials is set.
type Options struct {
	// Image is the image to attest: name[:tag] or name@sha256:<hex>. A tag is
	// resolved to a digest once.
	Image string
	// File, instead of Image, is a file to attest (a release archive, a
	// binary, an SBOM): the statement's subject is its SHA-256
	// ("sha256:<hex>"), and the transparent statement is stored next to it as
	// File+[FileStatementSuffix] (or at StatementOut), its preimage next to
	// that; no registry is involved.
	File string
	// TS is the Transparency Service base URL.
	TS string
	// IdentityServer is the Identity Server URL the CI token is exchanged at.
	IdentityServer string
	// Audience is the audience requested for the CI token. Default:
	// IdentityServer.
	Audience string
	// Provider is auto (default), github, gitlab, kubernetes or spiffe.
	Provider string
	// Credentials, when set, replaces workload.Obtain (tests, quickstart).
	Credentials CredentialsSource

	// PredicateFile, when set, is an in-toto statement (or DSSE envelope) used
	// as given, which must list the image among its subjects, or a bare
	// predicate (a JSON object) wrapped in a statement about the image.
	// Default: SLSA provenance built from the CI context.
	PredicateFile string
	// PredicateType is the predicateType of a bare predicate. Default: SLSA
	// Provenance v1 when the predicate has its shape, otherwise required.
	PredicateType string
	// ContentType, when set and not in-toto, signs PredicateFile as it is
	// with that content type (a CycloneDX or SPDX SBOM, OpenVEX, plain
	// text): JSON types are checked to be JSON. Default: in-toto.
	ContentType string
	// PredicateKeys are key files (PEM, JWK, COSE_Key) a DSSE envelope given
	// as PredicateFile must verify with; an envelope is refused without them.
	PredicateKeys []string
	// Location is the payload location (label 260) put in the statement.
	// Default: none (the preimage travels in the referrer next to it).
	Location string

	// StatementOut, when set, receives the transparent statement, and
	// StatementOut+".intoto.json" its preimage, before the attach step.
	StatementOut string
	// InsecureRegistries are registry hosts (HOST[:PORT]) reached over plain
	// HTTP, as --insecure-registry is everywhere in the CLI. Default: plain
	// HTTP only for loopback registries.
	InsecureRegistries []string
	// Registry is the OCI client. Default: oci.New with the credentials of
	// oci.Keychain(Getenv).
	Registry *oci.Client
	// TSOptions are extra SCRAPI client options (retries, backoff). Default
	// none.
	TSOptions []scrapi.Option
	// HTTPClient carries the token exchange and the registration (its
	// Transport is wrapped to add the WIMSE headers). Default: a client with a
	// 60 s timeout over http.DefaultTransport.
	HTTPClient *http.Client

	// Getenv reads the environment (CI context, tokens, registry
	// credentials). Default os.Getenv.
	Getenv func(string) string
	// Out receives CI workflow commands (GitHub's ::add-mask:: for the CI
	// token). Default os.Stderr.
	Out io.Writer
	// Progress, when set, is called after each step with its outcome.
	Progress func(Step)
	// Now is the clock (statement iat). Default time.Now.
	Now func() time.Time
}

// Run attests o.Image: identity, provenance, sign, register, attach. The
// returned Result holds the steps done so far even when err is not nil.
// Errors wrap ErrInput for bad options, ErrRefused when a service refused the
// request, and are a *StepError naming the failed step; an attach failure
// after registration is a *NotAttachedError.
func Run(ctx context.Context, o Options) (*Result, error) {
	if err := o.defaults(); err != nil {
		return nil, err
	}
	r := &run{o: o, res: &Result{Image: o.Image, File: o.File, TSURL: o.TS}}
	err := r.do(ctx)
	return r.res, err
}

type run struct {
	o   Options
	res *Result

	creds     *workload.Credentials
	preimage  *provenance.Payload
	signed    []byte
	receipt   *scitt.Receipt
	statement []byte
}

func (o *Options) defaults() error {
	if (o.Image == "") == (o.File == "") {
		return fmt.Errorf("%w: give an image or a file to attest (one of them)", ErrInput)
	}
	if o.TS == "" {
		return fmt.Errorf("%w: the transparency service URL is required (--ts)", ErrInput)
	}
	if o.IdentityServer == "" && o.Credentials == nil && o.Provider != workload.ProviderSPIFFE {
		return fmt.Errorf("%w: the identity server URL is required (--identity-server)", ErrInput)
	}
	if o.Getenv == nil {
		o.Getenv = os.Getenv
	}
	if o.Out == nil {
		o.Out = os.Stderr
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{Timeout: 60 * time.Second}
	}
	if o.Registry == nil && o.File == "" {
		opts := []oci.Option{oci.WithKeychain(oci.Keychain(o.Getenv))}
		for _, h := range o.InsecureRegistries {
			opts = append(opts, oci.WithInsecureRegistry(h))
		}
		c, err := oci.New(opts...)
		if err != nil {
			return fmt.Errorf("%w: %w", ErrInput, err)
		}
		o.Registry = c
	}
	return nil
}

func (r *run) do(ctx context.Context) error {
	steps := []struct {
		name string
		f    func(context.Context) error
	}{
		{StepIdentity, r.identity},
		{StepProvenance, r.provenance},
		{StepSign, r.sign},
		{StepRegister, r.register},
		{StepAttach, r.attach},
	}
	for _, s := range steps {
		start := time.Now()
		err := s.f(ctx)
		st := Step{Name: s.name, Duration: time.Since(start)}
		if err != nil {
			st.Err = err
		}
		r.res.Steps = append(r.res.Steps, st)
		if r.o.Progress != nil {
			r.o.Progress(st)
		}
		if err != nil {
			var na *NotAttachedError
			if errors.As(err, &na) {
				return err
			}
			return &StepError{Step: s.name, Err: err}
		}
	}
	return nil
}

func (r *run) identity(ctx context.Context) error {
	src := r.o.Credentials
	if src == nil {
		src = func(ctx context.Context) (*workload.Credentials, error) {
			return workload.Obtain(ctx, workload.ObtainOptions{
				Server: r.o.IdentityServer, Audience: r.o.Audience, Provider: r.o.Provider,
				Getenv: r.o.Getenv, HTTPClient: r.o.HTTPClient, Out: r.o.Out,
			})
		}
	}
	creds, err := src(ctx)
	if err != nil {
		if errors.Is(err, workload.ErrExchange) {
			return fmt.Errorf("%w: %w", ErrRefused, err)
		}
		return err
	}
	if creds == nil || creds.Key == nil || creds.Key.Signer == nil {
		return fmt.Errorf("%w: the credentials source returned no key", ErrInput)
	}
	if creds.ID.IsZero() {
		return fmt.Errorf("%w: the credentials source returned no workload identifier", ErrInput)
	}
	r.creds = creds
	r.res.WorkloadID = creds.ID.String()
	r.res.Provider = creds.Provider
	return nil
}

func (r *run) provenance(ctx context.Context) error {
	var subject provenance.Subject
	req := provenance.Request{Getenv: r.o.Getenv}
	if r.o.File != "" {
		hexd, err := fileSHA256(r.o.File)
		if err != nil {
			return fmt.Errorf("%w: %w", ErrInput, err)
		}
		r.res.Digest = "sha256:" + hexd
		r.res.Subject = r.res.Digest
		subject = provenance.Subject{Name: filepath.Base(r.o.File), Digest: map[string]string{"sha256": hexd}}
		req.Files = []string{r.o.File}
	} else {
		repo, dig, err := r.o.Registry.Resolve(ctx, r.o.Image)
		if err != nil {
			return fmt.Errorf("resolve %s: %w", r.o.Image, err)
		}
		hexd, ok := strings.CutPrefix(dig, "sha256:")
		if !ok {
			return fmt.Errorf("%w: %s has a %q digest; only sha256 is supported", ErrInput, r.o.Image, dig)
		}
		r.res.Repository, r.res.Digest = repo, dig
		r.res.Subject = "oci://" + repo + "@" + dig
		subject = provenance.Subject{Name: repo, Digest: map[string]string{"sha256": hexd}}
		req.Images = []string{repo + "@" + dig}
	}
	var err error
	var p *provenance.Payload
	if r.o.PredicateFile != "" {
		p, err = loadPredicate(predicateInput{path: r.o.PredicateFile, predicateType: r.o.PredicateType,
			contentType: r.o.ContentType, keys: r.o.PredicateKeys}, subject)
	} else if r.o.ContentType != "" || r.o.PredicateType != "" {
		err = fmt.Errorf("%w: --content-type and --predicate-type describe a --predicate file", ErrInput)
	} else {
		popts := []provenance.Option{provenance.WithClock(r.o.Now)}
		if b := calledWorkflowBuilder(r.creds, r.o.Getenv); b != "" {
			popts = append(popts, provenance.WithBuilderID(b))
		}
		var st *provenance.Statement
		st, err = provenance.Generate(ctx, req, popts...)
		if err == nil {
			p = &provenance.Payload{Raw: st.Raw, MediaType: st.MediaType, Kind: provenance.KindInToto, Statement: st}
		}
	}
	if err != nil {
		return err
	}
	r.preimage = p
	r.res.PredicateType = p.PredicateType()
	r.res.ContentType = p.MediaType
	r.res.Preimage = p.Raw
	return nil
}

func (r *run) sign(ctx context.Context) error {
	ct := r.preimage.MediaType
	if r.preimage.Kind != provenance.KindInToto && r.o.ContentType != "" {
		ct = r.o.ContentType // as declared, parameters included
	}
	opts := []scitt.SignOption{scitt.WithContentType(ct)}
	if r.creds.WIT != "" {
		opts = append(opts, scitt.WithWIT(r.creds.WIT))
	}
	if r.o.Location != "" {
		opts = append(opts, scitt.WithLocation(r.o.Location))
	}
	claims := scitt.Claims{Issuer: r.res.WorkloadID, Subject: r.res.Subject, IssuedAt: r.o.Now()}
	signed, err := scitt.SignStatement(ctx, r.creds.Key, claims, r.preimage.Raw, opts...)
	if err != nil {
		return err
	}
	entry, err := scitt.EntryHash(signed)
	if err != nil {
		return err
	}
	r.signed = signed
	r.res.EntryID = fmt.Sprintf("%x", entry)
	return nil
}

func (r *run) register(ctx context.Context) error {
	hc := *r.o.HTTPClient
	if r.creds.WIT != "" {
		wk, err := keys.NewPrivateKey(r.creds.Key.Signer)
		if err != nil {
			return err
		}
		hc.Transport = &wimse.Transport{Base: hc.Transport, Credentials: wimse.Credentials{WIT: r.creds.WIT, Key: wk}}
	}
	c, err := scrapi.NewClient(r.o.TS, append([]scrapi.Option{scrapi.WithHTTPClient(&hc)}, r.o.TSOptions...)...)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrInput, err)
	}
	reg, err := c.Register(ctx, r.signed)
	if err != nil {
		var p *scrapi.Problem
		if errors.As(err, &p) && p.Status >= 400 && p.Status < 500 && p.Status != http.StatusTooManyRequests {
			return fmt.Errorf("%w: %w", ErrRefused, err)
		}
		return err
	}
	if reg.EntryID != "" && reg.EntryID != r.res.EntryID {
		return fmt.Errorf("%w: the service named entry %s for a statement whose entry id is %s", ErrBadReceipt, reg.EntryID, r.res.EntryID)
	}
	rcpt, err := scitt.ParseReceipt(reg.Receipt)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrBadReceipt, err)
	}
	keys, err := c.Keys(ctx)
	if err != nil {
		return fmt.Errorf("fetch the service keys to check the receipt: %w", err)
	}
	if _, err := rcpt.VerifyInclusion(r.signed, keys, scitt.LeafIETF); err != nil {
		return fmt.Errorf("%w: %w", ErrBadReceipt, err)
	}
	if len(rcpt.Inclusion) == 0 {
		return fmt.Errorf("%w: no inclusion proof", ErrBadReceipt)
	}
	r.receipt = rcpt
	r.res.LogIndex = rcpt.Inclusion[0].LeafIndex
	r.res.TreeSize = rcpt.Inclusion[0].TreeSize
	r.res.TS = rcpt.Issuer
	ts, err := scitt.AddReceipt(r.signed, reg.Receipt)
	if err != nil {
		return err
	}
	r.statement = ts
	r.res.Statement = ts
	return nil
}

func (r *run) attach(ctx context.Context) error {
	if r.o.File != "" {
		// A file has no registry: the statement is stored next to it.
		path := r.o.StatementOut
		if path == "" {
			path = r.o.File + FileStatementSuffix
		}
		return r.save(path)
	}
	if r.o.StatementOut != "" {
		if err := r.save(r.o.StatementOut); err != nil {
			return r.notAttached(err)
		}
	}
	a := oci.Attachment{
		Statement: r.statement, Preimage: r.preimage.Raw, PreimageMediaType: r.preimage.MediaType,
		PreimageTitle: PreimageTitle(r.preimage.MediaType),
		Annotations: oci.Annotations{
			Created: r.o.Now(), Issuer: r.res.WorkloadID, Subject: r.res.Subject, EntryID: r.res.EntryID,
			PredicateType: r.res.PredicateType, ContentType: r.preimage.MediaType, TS: nonEmpty(r.res.TS),
		},
	}
	atts, err := r.o.Registry.Attach(ctx, r.res.Repository+"@"+r.res.Digest, a)
	if err != nil {
		return r.notAttached(err)
	}
	if len(atts) == 0 {
		return r.notAttached(errors.New("the registry client attached nothing"))
	}
	r.res.Referrer = atts[0].Referrer
	_, r.res.ReferrerDigest, _ = strings.Cut(atts[0].Referrer, "@")
	r.res.ReferrerMode = string(atts[0].Mode)
	return nil
}

// save writes the transparent statement to path and its preimage next to it.
func (r *run) save(path string) error {
	if err := atomicfile.WriteFile(path, r.statement, 0o644); err != nil {
		return fmt.Errorf("write statement: %w", err)
	}
	pre := path + PreimageSuffix
	if r.preimage.MediaType != provenance.MediaType {
		pre = path + provenance.FileExtension(r.preimage.MediaType)
	}
	if err := atomicfile.WriteFile(pre, r.preimage.Raw, 0o644); err != nil {
		return fmt.Errorf("write preimage: %w", err)
	}
	r.res.StatementPath, r.res.PreimagePath = path, pre
	return nil
}

// notAttached saves the statement when it is not saved yet (so that the
// registered statement is never lost) and builds the error.
func (r *run) notAttached(cause error) error {
	e := &NotAttachedError{EntryID: r.res.EntryID, Image: r.res.Repository + "@" + r.res.Digest, Err: cause}
	if r.res.StatementPath == "" {
		if dir, err := os.MkdirTemp("", "trustfabric-attest-"); err == nil {
			if err := r.save(filepath.Join(dir, "statement.cose")); err != nil {
				e.SaveErr = err
			}
		} else {
			e.SaveErr = err
		}
	}
	e.StatementPath, e.PreimagePath = r.res.StatementPath, r.res.PreimagePath
	return e
}

// FileStatementSuffix is appended to an attested file's path to name its
// transparent statement (`trustfabric verify --file` looks for it there).
const FileStatementSuffix = ".scitt.cose"

// fileSHA256 hashes a file as a stream.
func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("read %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// PreimageSuffix is appended to the statement path to name an in-toto
// preimage file; other payloads get provenance.FileExtension of their type.
const PreimageSuffix = ".intoto.json"

func nonEmpty(s string) []string {
	if s == "" {
		return nil
	}
	return []string{s}
}

// calledWorkflowBuilder returns the builder id of a job that runs in a called
// reusable workflow (the isolated attest workflow): the WIT's signed
// job_workflow_ref, when it differs from the caller's workflow_ref, under the
// GitHub server URL. The runner's environment names only the caller, and the
// gate decides the builder rule on job_workflow_ref, so the provenance must
// name it. Empty otherwise (the platform's default builder applies).
func calledWorkflowBuilder(creds *workload.Credentials, getenv func(string) string) string {
	if creds == nil || creds.WIT == "" {
		return ""
	}
	u, err := wimse.DecodeUnverified(creds.WIT)
	if err != nil {
		return ""
	}
	ci, _ := u.Claims["https://trustfabric.dev/ci"].(map[string]any)
	job, _ := ci["job_workflow_ref"].(string)
	caller, _ := ci["workflow_ref"].(string)
	if job == "" || job == caller {
		return ""
	}
	server := "https://github.com"
	if getenv != nil && getenv("GITHUB_SERVER_URL") != "" {
		server = strings.TrimSuffix(getenv("GITHUB_SERVER_URL"), "/")
	}
	return server + "/" + job
}
