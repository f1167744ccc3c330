package oidctest

import "time"

// Pod describes the pod whose projected service-account tokens a Kubernetes
// fake mints. Zero fields get the defaults of DefaultPod.
type Pod struct {
	Namespace, ServiceAccount, ServiceAccountUID string
	PodName, PodUID, NodeName, NodeUID           string
	// ExpirationSeconds is the projected volume's expirationSeconds (default 600).
	ExpirationSeconds int
}

// DefaultPod is a Tekton TaskRun pod in namespace "ci" running as "builder".
var DefaultPod = Pod{
	Namespace: "ci", ServiceAccount: "builder", ServiceAccountUID: "6f5e4d3c-2b1a-4098-8776-655443322110",
	PodName: "build-run-x7k2p-pod", PodUID: "0a1b2c3d-4e5f-4061-8273-948596a7b8c9",
	NodeName: "node-1", NodeUID: "11111111-2222-4333-8444-555555555555", ExpirationSeconds: 600,
}

func (p Pod) withDefaults() Pod {
	d := DefaultPod
	set := func(dst *string, v string) {
		if v != "" {
			*dst = v
		}
	}
	set(&d.Namespace, p.Namespace)
	set(&d.ServiceAccount, p.ServiceAccount)
	set(&d.ServiceAccountUID, p.ServiceAccountUID)
	set(&d.PodName, p.PodName)
	set(&d.PodUID, p.PodUID)
	set(&d.NodeName, p.NodeName)
	set(&d.NodeUID, p.NodeUID)
	if p.ExpirationSeconds != 0 {
		d.ExpirationSeconds = p.ExpirationSeconds
	}
	return d
}

// Kubernetes fakes a cluster's service-account issuer (JWKS at /openid/v1/jwks).
type Kubernetes struct{ *Issuer }

// NewKubernetes starts a Kubernetes service-account issuer fake.
func NewKubernetes() (*Kubernetes, error) {
	iss, err := newIssuer("/openid/v1/jwks")
	if err != nil {
		return nil, err
	}
	return &Kubernetes{iss}, nil
}

// Claims returns the claims of a bound projected service-account token for pod
// with the given audiences: aud is an array, sub
// system:serviceaccount:<ns>:<sa>, nbf = iat, and the kubernetes.io object.
func (k *Kubernetes) Claims(pod Pod, aud ...string) map[string]any {
	p := pod.withDefaults()
	now := k.clock()
	exp := now.Add(time.Duration(p.ExpirationSeconds) * time.Second)
	return map[string]any{
		"aud": aud, "exp": exp.Unix(), "iat": now.Unix(), "nbf": now.Unix(), "iss": k.URL(), "jti": randomID(),
		"sub": "system:serviceaccount:" + p.Namespace + ":" + p.ServiceAccount,
		"kubernetes.io": map[string]any{
			"namespace":      p.Namespace,
			"node":           map[string]string{"name": p.NodeName, "uid": p.NodeUID},
			"pod":            map[string]string{"name": p.PodName, "uid": p.PodUID},
			"serviceaccount": map[string]string{"name": p.ServiceAccount, "uid": p.ServiceAccountUID},
			"warnafter":      now.Add(time.Duration(p.ExpirationSeconds) * time.Second * 8 / 10).Unix(),
		},
	}
}

// MintPod mints a projected service-account token for pod.
func (k *Kubernetes) MintPod(pod Pod, aud ...string) (string, error) {
	return k.Mint(k.Claims(pod, aud...))
}
