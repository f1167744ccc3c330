package admission

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/trustfabric/trustfabric/pkg/oci"
	"github.com/trustfabric/trustfabric/pkg/policy"
)

// NamespaceLabels returns the labels of a namespace. It is needed only when
// the configuration selects namespaces by label (AdmissionReview carries the
// namespace's name, not its labels). An error denies the request.
type NamespaceLabels func(ctx context.Context, namespace string) (map[string]string, error)

// ErrNoPolicy: the namespace matches no rule and the configuration has no
// default.
var ErrNoPolicy = errors.New("no verification policy applies to the namespace")

// Webhook decides admission requests on the configured policies. It is safe
// for concurrent use.
type Webhook struct {
	cfg       *Config
	oci       *oci.Client
	verifiers map[string]*verifierState
	hashes    map[string]string
	labels    NamespaceLabels
	pull      PullSecrets
	log       *slog.Logger
}

type options struct {
	oci        *oci.Client
	labels     NamespaceLabels
	pull       PullSecrets
	log        *slog.Logger
	policyOpts []policy.Option
}

// Option configures a Webhook.
type Option func(*options) error

// WithOCIClient sets the registry client used to resolve tags and fetch
// referrers. Default: oci.New().
func WithOCIClient(c *oci.Client) Option { return func(o *options) error { o.oci = c; return nil } }

// WithNamespaceLabels sets how namespace labels are read (see
// KubeNamespaces). Default: none, and a configuration that selects
// namespaces by label is refused by New.
func WithNamespaceLabels(f NamespaceLabels) Option {
	return func(o *options) error { o.labels = f; return nil }
}

// WithPullSecrets makes each request read the registry with the
// credentials of its pod spec's imagePullSecrets and its service
// account's (see KubePullSecrets), tried before the registry client's own
// keychain. Decisions are then cached per credentials: an image verified
// with one pod's secret is verified again for a pod without it. Default:
// none (the registry client's keychain only).
func WithPullSecrets(f PullSecrets) Option {
	return func(o *options) error { o.pull = f; return nil }
}

// WithLogger logs one line per decision (namespace, kind, name, verdict,
// images, duration; never credentials). Default: discarded.
func WithLogger(l *slog.Logger) Option { return func(o *options) error { o.log = l; return nil } }

// WithPolicyOptions passes options to every policy.Verifier (cache TTLs,
// budget, offline). The registry client is always the webhook's.
func WithPolicyOptions(opts ...policy.Option) Option {
	return func(o *options) error { o.policyOpts = append(o.policyOpts, opts...); return nil }
}

// New builds a policy.Verifier per configured policy (fetching the keys and
// bundles they name).
func New(ctx context.Context, cfg *Config, opts ...Option) (*Webhook, error) {
	var o options
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	if cfg == nil || cfg.policies == nil {
		return nil, errors.New("admission: the config must come from LoadConfig, ParseConfig or SinglePolicy")
	}
	if cfg.usesLabels() && o.labels == nil {
		return nil, fmt.Errorf("%w: the config selects namespaces by label: give the webhook access to the Kubernetes API (in cluster, or --kube-server)", ErrInvalidConfig)
	}
	if o.oci == nil {
		c, err := oci.New()
		if err != nil {
			return nil, err
		}
		o.oci = c
	}
	if o.log == nil {
		o.log = slog.New(slog.DiscardHandler)
	}
	w := &Webhook{cfg: cfg, oci: o.oci, labels: o.labels, pull: o.pull, log: o.log,
		verifiers: map[string]*verifierState{}, hashes: map[string]string{}}
	for name, p := range cfg.policies {
		st := &verifierState{name: name, p: p, opts: append(slices.Clone(o.policyOpts), policy.WithOCIClient(o.oci))}
		if _, err := st.build(ctx); err != nil && !fetchesKeys(p) {
			return nil, fmt.Errorf("policy %s: %w", name, err)
		} else if err != nil {
			// Keys or bundles behind a URL that does not answer yet: the
			// webhook starts, denies the policy's namespaces naming the
			// cause, and tries again (at most every VerifierRetry).
			o.log.LogAttrs(ctx, slog.LevelWarn, "policy not ready", slog.String("policy", name), slog.String("error", err.Error()))
		}
		w.verifiers[name] = st
		h := p.Hash()
		w.hashes[name] = hex.EncodeToString(h[:])
	}
	return w, nil
}

// VerifierRetry is how often a policy whose keys or bundles could not be
// fetched is tried again (on the next request after it).
const VerifierRetry = 5 * time.Second

// ErrPolicyNotReady: the keys or bundles a policy fetches by URL could not
// be fetched; its namespaces are denied until they can.
var ErrPolicyNotReady = errors.New("verification policy not ready")

// verifierState is one policy's Verifier, built when its keys can be
// fetched.
type verifierState struct {
	name string
	p    *policy.Policy
	opts []policy.Option

	v     atomic.Pointer[policy.Verifier]
	mu    sync.Mutex
	err   error
	tried time.Time
}

// fetchesKeys reports whether a policy fetches keys or bundles by URL.
func fetchesKeys(p *policy.Policy) bool {
	for _, ts := range p.TransparencyServices {
		if ts.URL != "" && len(ts.Kids) > 0 {
			return true
		}
	}
	for _, d := range p.Identities {
		if d.BundleURL != "" {
			return true
		}
	}
	return false
}

// build makes the Verifier once; after a failure it tries again at most
// every VerifierRetry and returns the last error in between.
func (s *verifierState) build(ctx context.Context) (*policy.Verifier, error) {
	if v := s.v.Load(); v != nil {
		return v, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if v := s.v.Load(); v != nil {
		return v, nil
	}
	if s.err != nil && time.Since(s.tried) < VerifierRetry {
		return nil, s.err
	}
	s.tried = time.Now()
	v, err := policy.NewVerifier(ctx, s.p, s.opts...)
	if err != nil {
		s.err = fmt.Errorf("%w: policy %s: %w (tried at %s; next try after %s)", ErrPolicyNotReady, s.name, err,
			s.tried.UTC().Format(time.RFC3339), VerifierRetry)
		return nil, s.err
	}
	s.v.Store(v)
	s.err = nil
	return v, nil
}

// policyFor returns the policy name of a namespace, or exempt.
func (w *Webhook) policyFor(ctx context.Context, ns string) (name string, exempt bool, err error) {
	if slices.Contains(w.cfg.Exempt.Names, ns) {
		return "", true, nil
	}
	var labels map[string]string
	getLabels := func() (map[string]string, error) {
		if labels != nil {
			return labels, nil
		}
		l, err := w.labels(ctx, ns)
		if err != nil {
			return nil, fmt.Errorf("read the labels of namespace %s: %w", ns, err)
		}
		if l == nil {
			l = map[string]string{}
		}
		labels = l
		return labels, nil
	}
	if w.cfg.Exempt.Selector != nil {
		l, err := getLabels()
		if err != nil {
			return "", false, err
		}
		if w.cfg.Exempt.Selector.Matches(l) {
			return "", true, nil
		}
	}
	for _, r := range w.cfg.Namespaces {
		if r.Selector == nil {
			if slices.Contains(r.Names, ns) {
				return r.Policy, false, nil
			}
			continue
		}
		l, err := getLabels()
		if err != nil {
			return "", false, err
		}
		if r.Selector.Matches(l) {
			return r.Policy, false, nil
		}
	}
	if w.cfg.Default != "" {
		return w.cfg.Default, false, nil
	}
	return "", false, fmt.Errorf("%w: namespace %s matches no rule of the admission config and it has no default", ErrNoPolicy, ns)
}

// ImageResult is the verdict on one image of a request.
type ImageResult struct {
	// Image is the reference as written in the object; Containers name the
	// containers that use it.
	Image      string
	Containers []Container
	// Digest is what the image resolved to (a tag is resolved once per
	// request); Ref is repository@digest.
	Digest, Ref string
	// Decision is the verifier's decision on the image's own statements,
	// when it could decide.
	Decision *policy.Decision
	// MultiArch is the multi-arch rule tried when Decision denied: the
	// platform manifests of an index, or the index of a platform digest.
	MultiArch *MultiArchResult
	// Err is why no decision was made (registry unreachable, time-out,
	// image missing): the image is denied (fail closed).
	Err error
}

// Allowed reports whether the image may run.
func (r *ImageResult) Allowed() bool {
	if r.Err != nil || r.Decision == nil {
		return false
	}
	return r.Decision.Allowed || r.MultiArch.allowed()
}

// Entries are the transparency log entry ids of the statements that
// allowed the image.
func (r *ImageResult) Entries() []string {
	var out []string
	add := func(d *policy.Decision) {
		if d == nil || !d.Allowed {
			return
		}
		for _, req := range d.Requirements {
			for _, c := range d.Candidates {
				if c.Referrer == req.SatisfiedBy && c.EntryID != "" && !slices.Contains(out, c.EntryID) {
					out = append(out, c.EntryID)
				}
			}
		}
	}
	add(r.Decision)
	if r.Decision != nil && !r.Decision.Allowed && r.MultiArch.allowed() {
		for _, p := range r.MultiArch.Parts {
			add(p.Decision)
		}
	}
	return out
}

// Reasons say why the image is denied, in the words of `trustfabric verify`.
func (r *ImageResult) Reasons() []string {
	if r.Err != nil {
		return []string{"cannot verify (denied, fail closed): " + r.Err.Error()}
	}
	if r.Decision == nil || r.Allowed() {
		return nil
	}
	out := slices.Clone(r.Decision.Reasons)
	m := r.MultiArch
	if m == nil {
		return out
	}
	if m.Err != nil {
		return append(out, "multi-arch ("+m.Rule+"): "+m.Err.Error())
	}
	for _, p := range m.Parts {
		switch {
		case p.Err != nil:
			out = append(out, fmt.Sprintf("multi-arch (%s): %s %s: cannot verify (denied, fail closed): %s", m.Rule, p.Name, p.Ref, p.Err))
		case !p.Decision.Allowed:
			why := "denied"
			if len(p.Decision.Reasons) > 0 {
				why = p.Decision.Reasons[0]
			}
			out = append(out, fmt.Sprintf("multi-arch (%s): %s %s: %s", m.Rule, p.Name, p.Ref, why))
		}
	}
	return out
}

// verifyImages resolves each distinct image once and verifies it, a few at
// a time.
func (w *Webhook) verifyImages(ctx context.Context, v *policy.Verifier, cs []Container) []*ImageResult {
	byImage := map[string]*ImageResult{}
	var order []*ImageResult
	for _, c := range cs {
		r, ok := byImage[c.Image]
		if !ok {
			r = &ImageResult{Image: c.Image}
			byImage[c.Image] = r
			order = append(order, r)
		}
		r.Containers = append(r.Containers, c)
	}
	sem := make(chan struct{}, 8)
	var wg sync.WaitGroup
	for _, r := range order {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			w.verifyImage(ctx, v, r)
		}()
	}
	wg.Wait()
	return order
}

func (w *Webhook) verifyImage(ctx context.Context, v *policy.Verifier, r *ImageResult) {
	repo, digest, err := w.oci.Resolve(ctx, r.Image)
	if err != nil {
		r.Err = explain(ctx, err)
		return
	}
	r.Digest, r.Ref = digest, repo+"@"+digest
	d, err := v.Verify(ctx, r.Ref)
	if err != nil {
		r.Err = explain(ctx, err)
		return
	}
	r.Decision = d
	if !d.Allowed {
		// Only a denied image costs the manifest read the rules need.
		r.MultiArch = w.multiArch(ctx, v, r)
	}
}

// explain adds the time-out to an error caused by the request's deadline.
func explain(ctx context.Context, err error) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		if dl, ok := ctx.Deadline(); ok {
			return fmt.Errorf("timed out (the request's budget ended at %s): %w", dl.UTC().Format(time.RFC3339Nano), err)
		}
	}
	return err
}

// Outcome is the decision on one admission request.
type Outcome struct {
	Allowed bool
	// Exempt: the namespace is exempt; nothing was verified.
	Exempt bool
	// Policy is the policy name applied.
	Policy string
	Images []*ImageResult
	// Err is a request that could not be decided at all (bad request,
	// unsupported kind, no policy); it denies.
	Err error
	// Code is the HTTP-style status of a refusal: 400 for a bad request,
	// 403 for a denial.
	Code int32
}

// Decide decides a request. It never returns an allow for a request it
// could not verify.
func (w *Webhook) Decide(ctx context.Context, req *Request) *Outcome {
	switch req.Operation {
	case "CREATE", "UPDATE":
	default:
		return &Outcome{Allowed: true} // DELETE and CONNECT start no image
	}
	if req.SubResource != "" && req.SubResource != "ephemeralcontainers" {
		return &Outcome{Allowed: true} // status, scale: no new image
	}
	cs, err := req.Containers()
	if err != nil {
		return &Outcome{Err: err, Code: 400}
	}
	if req.Namespace == "" {
		return &Outcome{Err: fmt.Errorf("%w: request.namespace is empty for a namespaced %s", ErrBadReview, req.Kind.Kind), Code: 400}
	}
	name, exempt, err := w.policyFor(ctx, req.Namespace)
	if err != nil {
		return &Outcome{Err: err, Code: 403}
	}
	if exempt {
		return &Outcome{Allowed: true, Exempt: true}
	}
	v, err := w.verifiers[name].build(ctx)
	if err != nil {
		return &Outcome{Policy: name, Err: fmt.Errorf("cannot verify (denied, fail closed): %w", explain(ctx, err)), Code: 403}
	}
	if w.pull != nil {
		refs, err := req.PullRefs()
		if err != nil {
			return &Outcome{Policy: name, Err: err, Code: 400}
		}
		kc, err := w.pull(ctx, req.Namespace, refs)
		if err != nil {
			code := int32(403)
			if errors.Is(err, ErrTooMany) || errors.Is(err, ErrBadReview) {
				code = 400
			}
			return &Outcome{Policy: name, Err: fmt.Errorf("cannot verify (denied, fail closed): registry credentials: %w", explain(ctx, err)), Code: code}
		}
		ctx = oci.WithRequestKeychain(ctx, kc)
	}
	out := &Outcome{Policy: name, Images: w.verifyImages(ctx, v, cs), Allowed: true, Code: 403}
	for _, r := range out.Images {
		if !r.Allowed() {
			out.Allowed = false
		}
	}
	return out
}

// maxReasonsPerImage bounds the reasons quoted per image in a denial (the
// decision has them all; `trustfabric verify` shows every candidate).
const maxReasonsPerImage = 5

// Message is the denial message: per image, the failed check and why.
func (o *Outcome) Message(req *Request) string {
	what := req.Kind.Kind + " " + req.Namespace + "/" + req.Name
	if req.Name == "" {
		what = req.Kind.Kind + " in namespace " + req.Namespace
	}
	if o.Err != nil {
		return "trustfabric: " + what + ": " + o.Err.Error()
	}
	var b strings.Builder
	fmt.Fprintf(&b, "trustfabric: %s denied by policy %q:", what, o.Policy)
	for _, r := range o.Images {
		if r.Allowed() {
			continue
		}
		fmt.Fprintf(&b, "\n- image %s (%s)", r.Image, containerNames(r.Containers))
		if r.Ref != "" && r.Ref != r.Image {
			fmt.Fprintf(&b, " = %s", r.Ref)
		}
		reasons := r.Reasons()
		if len(reasons) == 0 {
			reasons = []string{"denied"}
		}
		for i, reason := range reasons {
			if i == maxReasonsPerImage {
				fmt.Fprintf(&b, "\n    (%d more: run trustfabric verify %s)", len(reasons)-i, r.Ref)
				break
			}
			fmt.Fprintf(&b, "\n    %s", reason)
		}
	}
	return b.String()
}

func containerNames(cs []Container) string {
	names := make([]string, 0, len(cs))
	for _, c := range cs {
		kind := "container"
		switch {
		case strings.Contains(c.Path, "/initContainers/"):
			kind = "init container"
		case strings.Contains(c.Path, "/ephemeralContainers/"):
			kind = "ephemeral container"
		}
		names = append(names, kind+" "+c.Name)
	}
	return strings.Join(names, ", ")
}

// Annotations are the audit annotations of an allowed request: the policy
// and, per image, the digest and the log entry ids that allowed it. The API
// server prefixes each key with the webhook's name.
func (w *Webhook) Annotations(o *Outcome) map[string]string {
	if o.Exempt {
		return map[string]string{"exempt": "namespace is exempt: no verification"}
	}
	if o.Policy == "" {
		return nil
	}
	a := map[string]string{"policy": o.Policy + " sha256:" + w.hashes[o.Policy]}
	var imgs []string
	for _, r := range o.Images {
		if r.Allowed() {
			imgs = append(imgs, r.Image+"="+r.Ref+" entries="+strings.Join(r.Entries(), ","))
		}
	}
	sort.Strings(imgs)
	if len(imgs) > 0 {
		a["images"] = strings.Join(imgs, "; ")
	}
	return a
}

// Patch returns the JSONPatch that pins every image given by tag to the
// digest it was verified at (only for an allowed outcome).
func (o *Outcome) Patch() ([]byte, error) {
	if !o.Allowed || o.Exempt {
		return nil, nil
	}
	type op struct {
		Op    string `json:"op"`
		Path  string `json:"path"`
		Value string `json:"value"`
	}
	var ops []op
	for _, r := range o.Images {
		if r.Digest == "" || strings.Contains(r.Image, "@") {
			continue
		}
		for _, c := range r.Containers {
			ops = append(ops, op{Op: "replace", Path: c.Path, Value: r.Image + "@" + r.Digest})
		}
	}
	if len(ops) == 0 {
		return nil, nil
	}
	sort.Slice(ops, func(i, j int) bool { return ops[i].Path < ops[j].Path })
	return json.Marshal(ops)
}
