package oidctest

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// runnerClaims asks the runner endpoint for a token with bearer, as a job's
// step does, and returns the token's claims, or the HTTP status on refusal.
func runnerClaims(t *testing.T, g *GitHub, bearer string) (map[string]any, int) {
	t.Helper()
	req, err := http.NewRequest("GET", g.RequestURL()+"&audience="+url.QueryEscape("https://id.example.org"), nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+bearer)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, resp.StatusCode
	}
	var v struct{ Value string }
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(v.Value, ".")
	if len(parts) != 3 {
		t.Fatalf("token has %d parts", len(parts))
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c map[string]any
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	return c, resp.StatusCode
}

// Each job's request token mints that job's claims: the run's own job gets
// job_workflow_ref = workflow_ref, a job added for a called reusable workflow
// gets the called workflow, and an unknown bearer is refused.
func TestRunnerTokenPerJob(t *testing.T) {
	g, err := NewGitHub()
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	run := GitHubRun{Owner: "acme", Repo: "app", WorkflowFile: ".github/workflows/build.yml"}
	g.SetRun(run)
	called := run
	called.JobWorkflowRef = "acme/shared/.github/workflows/attest.yml@refs/tags/v1"
	calledToken := g.AddJob(called)

	tests := []struct {
		name, bearer, wantJob string
	}{
		{"own job", g.RequestToken, "acme/app/.github/workflows/build.yml@refs/heads/main"},
		{"called workflow's job", calledToken, called.JobWorkflowRef},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, status := runnerClaims(t, g, tt.bearer)
			if status != http.StatusOK {
				t.Fatalf("status %d", status)
			}
			if c["job_workflow_ref"] != tt.wantJob {
				t.Errorf("job_workflow_ref = %v, want %s", c["job_workflow_ref"], tt.wantJob)
			}
			if c["workflow_ref"] != "acme/app/.github/workflows/build.yml@refs/heads/main" {
				t.Errorf("workflow_ref = %v, want the caller's", c["workflow_ref"])
			}
		})
	}
	for _, bad := range []string{"", "wrong", calledToken + "x"} {
		if _, status := runnerClaims(t, g, bad); status != http.StatusUnauthorized {
			t.Errorf("bearer %q: status %d, want 401", bad, status)
		}
	}
}
