package admission

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/trustfabric/trustfabric/internal/jsonlimit"
)

// Limits on one request. A request beyond any of them is refused with a
// clear message (HTTP 200 with an AdmissionReview whose response denies,
// code 400, so that the API server shows the reason), never decoded further.
const (
	// MaxReviewSize bounds an AdmissionReview body. Kubernetes stores objects
	// of at most 1.5 MiB in etcd by default; a review carries the object and,
	// on updates, the old object.
	MaxReviewSize = 6 << 20
	// MaxDepth bounds the nesting of the review's JSON.
	MaxDepth = 64
	// MaxContainers bounds containers + init containers + ephemeral
	// containers of one pod spec.
	MaxContainers = 128
	// MaxImages bounds the distinct images of one request (each is resolved
	// and verified).
	MaxImages = 32
	// MaxImageRefLength bounds one image reference.
	MaxImageRefLength = 4096
)

// Errors of request decoding, for callers that branch on them.
var (
	// ErrBadReview: the body is not a well-formed admission.k8s.io/v1
	// AdmissionReview within the limits.
	ErrBadReview = errors.New("bad AdmissionReview")
	// ErrUnsupportedKind: the object is not a Pod or a workload kind with a
	// pod template.
	ErrUnsupportedKind = errors.New("kind is not gated")
	// ErrTooMany: more containers or images than the limits.
	ErrTooMany = errors.New("too many containers or images")
)

// The admission.k8s.io/v1 wire types this package needs, defined here
// rather than imported from k8s.io/api (which would bring the Kubernetes
// API machinery into the module for a dozen fields).
const (
	ReviewAPIVersion = "admission.k8s.io/v1"
	ReviewKind       = "AdmissionReview"
)

// Review is an admission.k8s.io/v1 AdmissionReview.
type Review struct {
	APIVersion string    `json:"apiVersion"`
	Kind       string    `json:"kind"`
	Request    *Request  `json:"request,omitempty"`
	Response   *Response `json:"response,omitempty"`
}

// Request is the part of an AdmissionRequest the webhook reads. Fields the
// webhook does not read are ignored (the API server adds fields over time).
type Request struct {
	UID         string           `json:"uid"`
	Kind        GroupVersionKind `json:"kind"`
	SubResource string           `json:"subResource,omitempty"`
	Name        string           `json:"name,omitempty"`
	Namespace   string           `json:"namespace,omitempty"`
	Operation   string           `json:"operation"`
	Object      json.RawMessage  `json:"object,omitempty"`
	DryRun      *bool            `json:"dryRun,omitempty"`
}

// GroupVersionKind names the kind of the object.
type GroupVersionKind struct {
	Group   string `json:"group"`
	Version string `json:"version"`
	Kind    string `json:"kind"`
}

func (k GroupVersionKind) String() string {
	if k.Group == "" {
		return k.Version + "/" + k.Kind
	}
	return k.Group + "/" + k.Version + "/" + k.Kind
}

// Response is an AdmissionResponse.
type Response struct {
	UID              string            `json:"uid"`
	Allowed          bool              `json:"allowed"`
	Result           *Status           `json:"status,omitempty"`
	Patch            []byte            `json:"patch,omitempty"`
	PatchType        string            `json:"patchType,omitempty"`
	AuditAnnotations map[string]string `json:"auditAnnotations,omitempty"`
	Warnings         []string          `json:"warnings,omitempty"`
}

// Status is the metav1.Status of a refusal.
type Status struct {
	Code    int32  `json:"code,omitempty"`
	Reason  string `json:"reason,omitempty"`
	Message string `json:"message,omitempty"`
}

// Container is one container, init container or ephemeral container of a
// pod spec: where it is (a JSON pointer, for patches) and its image.
type Container struct {
	// Path is the JSON pointer of the container's image field in the
	// object, e.g. /spec/template/spec/containers/0/image.
	Path string
	// Name is the container's name; Image its image reference as written.
	Name, Image string
}

type podSpec struct {
	Containers          []container `json:"containers"`
	InitContainers      []container `json:"initContainers"`
	EphemeralContainers []container `json:"ephemeralContainers"`
	ServiceAccountName  string      `json:"serviceAccountName"`
	// ServiceAccount is the deprecated alias of ServiceAccountName.
	ServiceAccount   string `json:"serviceAccount"`
	ImagePullSecrets []struct {
		Name string `json:"name"`
	} `json:"imagePullSecrets"`
}

type container struct {
	Name  string `json:"name"`
	Image string `json:"image"`
}

// podSpecPaths says where each gated kind keeps its pod spec.
var podSpecPaths = map[GroupVersionKind][]string{
	{Group: "", Version: "v1", Kind: "Pod"}:                   {"spec"},
	{Group: "apps", Version: "v1", Kind: "Deployment"}:        {"spec", "template", "spec"},
	{Group: "apps", Version: "v1", Kind: "ReplicaSet"}:        {"spec", "template", "spec"},
	{Group: "apps", Version: "v1", Kind: "StatefulSet"}:       {"spec", "template", "spec"},
	{Group: "apps", Version: "v1", Kind: "DaemonSet"}:         {"spec", "template", "spec"},
	{Group: "batch", Version: "v1", Kind: "Job"}:              {"spec", "template", "spec"},
	{Group: "batch", Version: "v1", Kind: "CronJob"}:          {"spec", "jobTemplate", "spec", "template", "spec"},
	{Group: "", Version: "v1", Kind: "ReplicationController"}: {"spec", "template", "spec"},
}

// GatedKinds lists the kinds the webhook gates (for docs and the webhook
// configuration's rules).
func GatedKinds() []GroupVersionKind {
	out := make([]GroupVersionKind, 0, len(podSpecPaths))
	for k := range podSpecPaths {
		out = append(out, k)
	}
	return out
}

// DecodeReview reads an AdmissionReview from r within the limits: at most
// MaxReviewSize bytes, nesting at most MaxDepth, no duplicate keys in any
// object (nor keys differing only in case, which encoding/json would
// conflate), nothing after the document, apiVersion admission.k8s.io/v1,
// kind AdmissionReview, a request with a uid. Errors wrap ErrBadReview.
func DecodeReview(r io.Reader) (*Review, error) {
	b, err := io.ReadAll(io.LimitReader(r, MaxReviewSize+1))
	if err != nil {
		return nil, fmt.Errorf("%w: read body: %w", ErrBadReview, err)
	}
	return ParseReview(b)
}

// ParseReview is DecodeReview on bytes.
func ParseReview(b []byte) (*Review, error) {
	if len(b) > MaxReviewSize {
		return nil, fmt.Errorf("%w: body larger than %d bytes", ErrBadReview, MaxReviewSize)
	}
	if err := checkJSON(b); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadReview, err)
	}
	var rv Review
	if err := json.Unmarshal(b, &rv); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadReview, err)
	}
	if rv.APIVersion != ReviewAPIVersion || rv.Kind != ReviewKind {
		return nil, fmt.Errorf("%w: apiVersion %q kind %q: want %s %s (list only v1 in the webhook's admissionReviewVersions)",
			ErrBadReview, trunc(rv.APIVersion), trunc(rv.Kind), ReviewAPIVersion, ReviewKind)
	}
	if rv.Request == nil {
		return nil, fmt.Errorf("%w: no request", ErrBadReview)
	}
	if rv.Request.UID == "" || len(rv.Request.UID) > 128 {
		return nil, fmt.Errorf("%w: request.uid is missing or longer than 128 bytes", ErrBadReview)
	}
	return &rv, nil
}

// checkJSON walks the document once: depth, duplicate keys (also under
// case folding: encoding/json matches keys case-insensitively, so
// {"image":"a","Image":"b"} would otherwise read as "b" here while another
// reader sees "a"), valid UTF-8, and a single value.
func checkJSON(b []byte) error {
	if err := jsonlimit.CheckDepth(b, MaxDepth); err != nil {
		return err
	}
	if !utf8.Valid(b) {
		return errors.New("body is not valid UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	type frame struct {
		object bool
		keys   map[string]bool
		key    bool // the next string token in an object is a key
	}
	var stack []*frame
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		switch t := tok.(type) {
		case json.Delim:
			switch t {
			case '{', '[':
				if top != nil && top.object {
					top.key = true
				}
				stack = append(stack, &frame{object: t == '{', keys: map[string]bool{}, key: true})
				if len(stack) == 1 && t != '{' {
					return errors.New("the document is not a JSON object")
				}
			case '}', ']':
				stack = stack[:len(stack)-1]
				if len(stack) == 0 && dec.More() {
					return errors.New("data after the JSON document")
				}
			}
			continue
		case string:
			if top != nil && top.object && top.key {
				k := strings.ToLower(t)
				if top.keys[k] {
					return fmt.Errorf("duplicate key %q", trunc(t))
				}
				top.keys[k] = true
				top.key = false
				continue
			}
		}
		if top == nil {
			return errors.New("the document is not a JSON object")
		}
		if top.object {
			top.key = true
		}
	}
	if len(stack) != 0 {
		return errors.New("unexpected end of JSON")
	}
	// Token accepts a second top-level value after the first closed; More
	// above catches it, and this catches trailing non-space bytes.
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("data after the JSON document")
	}
	return nil
}

// Containers returns every container of the request's object with its
// image, in order: containers, init containers, ephemeral containers.
// Errors wrap ErrUnsupportedKind, ErrBadReview or ErrTooMany.
func (r *Request) Containers() ([]Container, error) {
	spec, path, err := r.podSpec()
	if err != nil {
		return nil, err
	}
	n := len(spec.Containers) + len(spec.InitContainers) + len(spec.EphemeralContainers)
	if n > MaxContainers {
		return nil, fmt.Errorf("%w: %d containers in one pod spec; the limit is %d", ErrTooMany, n, MaxContainers)
	}
	base := "/" + strings.Join(path, "/")
	var out []Container
	distinct := map[string]bool{}
	for _, list := range []struct {
		field string
		cs    []container
	}{{"containers", spec.Containers}, {"initContainers", spec.InitContainers}, {"ephemeralContainers", spec.EphemeralContainers}} {
		for i, c := range list.cs {
			where := base + "/" + list.field + "/" + strconv.Itoa(i) + "/image"
			if c.Image == "" {
				return nil, fmt.Errorf("%w: %s has no image", ErrBadReview, where)
			}
			if len(c.Image) > MaxImageRefLength {
				return nil, fmt.Errorf("%w: %s is longer than %d bytes", ErrBadReview, where, MaxImageRefLength)
			}
			distinct[c.Image] = true
			out = append(out, Container{Path: where, Name: c.Name, Image: c.Image})
		}
	}
	if len(distinct) > MaxImages {
		return nil, fmt.Errorf("%w: %d distinct images; the limit is %d", ErrTooMany, len(distinct), MaxImages)
	}
	return out, nil
}

// PullRefs returns where the pod spec's registry credentials come from:
// its imagePullSecrets and its service account ("default" when the spec
// names none, as the API server defaults it). Errors as Containers.
func (r *Request) PullRefs() (PullRefs, error) {
	spec, _, err := r.podSpec()
	if err != nil {
		return PullRefs{}, err
	}
	refs := PullRefs{ServiceAccount: spec.ServiceAccountName}
	if refs.ServiceAccount == "" {
		refs.ServiceAccount = spec.ServiceAccount
	}
	if refs.ServiceAccount == "" {
		refs.ServiceAccount = "default"
	}
	if len(spec.ImagePullSecrets) > MaxPullSecrets {
		return PullRefs{}, fmt.Errorf("%w: %d imagePullSecrets; the limit is %d", ErrTooMany, len(spec.ImagePullSecrets), MaxPullSecrets)
	}
	for _, s := range spec.ImagePullSecrets {
		if s.Name != "" {
			refs.Secrets = append(refs.Secrets, s.Name)
		}
	}
	return refs, nil
}

// podSpec decodes the pod spec of the request's object and returns it
// with its path.
func (r *Request) podSpec() (podSpec, []string, error) {
	path, ok := podSpecPaths[r.Kind]
	if !ok {
		return podSpec{}, nil, fmt.Errorf("%w: %s (gated: Pod, Deployment, ReplicaSet, StatefulSet, DaemonSet, Job, CronJob, ReplicationController; take it out of the webhook's rules)",
			ErrUnsupportedKind, trunc(r.Kind.String()))
	}
	if len(r.Object) == 0 || string(r.Object) == "null" {
		return podSpec{}, nil, fmt.Errorf("%w: %s %s has no object", ErrBadReview, r.Operation, r.Kind.Kind)
	}
	raw := r.Object
	for _, field := range path {
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(raw, &obj); err != nil {
			return podSpec{}, nil, fmt.Errorf("%w: %s: %w", ErrBadReview, r.Kind.Kind, err)
		}
		next, ok := obj[field]
		if !ok {
			return podSpec{}, nil, fmt.Errorf("%w: %s has no %s", ErrBadReview, r.Kind.Kind, strings.Join(path, "."))
		}
		raw = next
	}
	var spec podSpec
	if err := json.Unmarshal(raw, &spec); err != nil {
		return podSpec{}, nil, fmt.Errorf("%w: %s.%s: %w", ErrBadReview, r.Kind.Kind, strings.Join(path, "."), err)
	}
	return spec, path, nil
}

func trunc(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}
