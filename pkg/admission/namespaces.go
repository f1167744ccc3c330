package admission

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"
)

// In-cluster service account files and the namespace-label cache.
const (
	serviceAccountDir = "/var/run/secrets/kubernetes.io/serviceaccount"
	// NamespaceCacheTTL is how long namespace labels are reused.
	NamespaceCacheTTL = 30 * time.Second
	maxNamespaceSize  = 1 << 20
)

// KubeAPI says how to reach the Kubernetes API to read namespace labels:
// the API server's URL, a bearer token file (re-read on every fetch, as
// projected tokens rotate) and the CA bundle of its serving certificate.
// The webhook needs RBAC "get" on namespaces (deploy/ grants it).
type KubeAPI struct {
	Server    string
	TokenFile string
	CAFile    string
}

// InCluster is the KubeAPI of a pod: KUBERNETES_SERVICE_HOST/PORT and the
// mounted service account token and CA. ok is false outside a cluster.
func InCluster() (KubeAPI, bool) {
	host, port := os.Getenv("KUBERNETES_SERVICE_HOST"), os.Getenv("KUBERNETES_SERVICE_PORT")
	if host == "" || port == "" {
		return KubeAPI{}, false
	}
	return KubeAPI{Server: "https://" + net.JoinHostPort(host, port),
		TokenFile: serviceAccountDir + "/token", CAFile: serviceAccountDir + "/ca.crt"}, true
}

// kubeClient GETs objects from the Kubernetes API with the service
// account's token (re-read on every request, as projected tokens rotate).
type kubeClient struct {
	api KubeAPI
	hc  *http.Client
}

func newKubeClient(api KubeAPI) (*kubeClient, error) {
	u, err := url.Parse(api.Server)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("kubernetes API server %q: want https://HOST:PORT", api.Server)
	}
	pem, err := os.ReadFile(api.CAFile)
	if err != nil {
		return nil, fmt.Errorf("kubernetes API CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("kubernetes API CA %s: no PEM certificate", api.CAFile)
	}
	if _, err := os.Stat(api.TokenFile); err != nil {
		return nil, fmt.Errorf("kubernetes API token: %w", err)
	}
	return &kubeClient{api: api, hc: &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}}, nil
}

// errKubeNotFound is a 404 from the API server.
var errKubeNotFound = errors.New("not found")

// get GETs path (/api/v1/...) into out, reading at most limit bytes.
// what names the object in errors ("namespace x"); verb the RBAC rule the
// webhook needs for it. A 404 wraps errKubeNotFound.
func (k *kubeClient) get(ctx context.Context, path, what, rbac string, limit int64, out any) error {
	tok, err := os.ReadFile(k.api.TokenFile)
	if err != nil {
		return fmt.Errorf("read token: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(k.api.Server, "/")+path, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(tok)))
	req.Header.Set("Accept", "application/json")
	resp, err := k.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return err
	}
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return fmt.Errorf("GET %s: %w", what, errKubeNotFound)
	case resp.StatusCode != http.StatusOK:
		return fmt.Errorf("GET %s: HTTP %d (the webhook's service account needs %s)", what, resp.StatusCode, rbac)
	case int64(len(b)) > limit:
		return fmt.Errorf("%s: larger than %d bytes", what, limit)
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("decode %s: %w", what, err)
	}
	return nil
}

// KubeNamespaces reads namespace labels from the Kubernetes API
// (GET /api/v1/namespaces/NAME), caching them for NamespaceCacheTTL.
func KubeNamespaces(api KubeAPI) (NamespaceLabels, error) {
	kc, err := newKubeClient(api)
	if err != nil {
		return nil, err
	}
	type entry struct {
		labels  map[string]string
		expires time.Time
	}
	var mu sync.Mutex
	cache := map[string]entry{}
	return func(ctx context.Context, ns string) (map[string]string, error) {
		mu.Lock()
		if e, ok := cache[ns]; ok && time.Now().Before(e.expires) {
			mu.Unlock()
			return e.labels, nil
		}
		mu.Unlock()
		if !dns1123Label.MatchString(ns) {
			return nil, fmt.Errorf("%q is not a namespace name", ns)
		}
		var obj struct {
			Metadata struct {
				Labels map[string]string `json:"labels"`
			} `json:"metadata"`
		}
		if err := kc.get(ctx, "/api/v1/namespaces/"+ns, "namespace "+ns, "get on namespaces", maxNamespaceSize, &obj); err != nil {
			return nil, err
		}
		labels := obj.Metadata.Labels
		if labels == nil {
			labels = map[string]string{}
		}
		mu.Lock()
		cache[ns] = entry{labels: labels, expires: time.Now().Add(NamespaceCacheTTL)}
		mu.Unlock()
		return labels, nil
	}, nil
}
